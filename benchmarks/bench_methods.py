"""Frames/s of the two detection methods, DIRE and DistilDIRE, in one run on the same frames and device, and their ratio.

Random weights in the official checkpoint formats (speed does not depend on the values); DIRE with the
config's `train.dire_steps` (20, as the paper) DDIM steps each way. The paper's A10 ratio is 3.2x.

    python benchmarks/bench_methods.py --config tiny                      # CPU
    python benchmarks/bench_methods.py --config default --batch 16        # GPU, full-size models
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from tests.checkpoints import random_dire_classifier, random_student, save_adm, save_dire_classifier, save_student  # noqa: E402


def rate(detector: Detector, frames: np.ndarray, repeats: int) -> float:
    """Frames per second of preprocess + score over `frames`, best of `repeats` timed runs after one warm-up batch (first-call costs excluded)."""
    detector.score(detector.preprocess(frames[: detector.batch.size]))
    best = 0.0
    for _ in range(repeats):
        if detector.device.type == "cuda":
            torch.cuda.synchronize(detector.device)
        start = time.perf_counter()
        detector.score(detector.preprocess(frames))
        if detector.device.type == "cuda":
            torch.cuda.synchronize(detector.device)
        best = max(best, len(frames) / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--backend", default="torch", choices=["torch", "compile"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    config = with_overrides(load_config(args.config), batch=args.batch, device=args.device, precision=args.precision)
    size = config.adm.image_size
    frames = np.random.default_rng(0).integers(0, 256, (args.frames, size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        adm = save_adm(Path(tmp) / "adm.pt", config.adm)
        student = save_student(Path(tmp) / "student.pth", random_student())
        dire = save_dire_classifier(Path(tmp) / "dire.pth", random_dire_classifier())
        rows = []
        for method in ("distildire", "dire"):
            weights = {"weights.adm": str(adm), "weights.student": str(student), "weights.dire": str(dire)}
            detector = Detector.load(with_overrides(config, weights, method=method, backend=args.backend))
            rows.append((method, rate(detector, frames, args.repeats), detector))
            print(f"{method}: {rows[-1][1]:.2f} frames/s", file=sys.stderr, flush=True)
    device, precision = rows[0][2].device, rows[0][2].precision
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"config {args.config} ({size}px), {args.frames} frames, batch {config.batch}, {device} ({name}), {precision}, backend {args.backend}, DIRE {config.train.dire_steps} DDIM steps each way")
    print(f"{'method':<12}{'frames/s':>12}{'s/frame':>12}")
    for method, fps, _ in rows:
        print(f"{method:<12}{fps:>12.2f}{1 / fps:>12.3f}")
    print(f"DistilDIRE / DIRE speed ratio: {rows[0][1] / rows[1][1]:.1f}x (paper, A10: 3.2x)")


if __name__ == "__main__":
    main()
