"""Benchmark the cheaper paths past the ADM: the int8 noise model, the lite detector and the cascade.

On a generated labelled dataset (fakes carry a colour cast and a checkerboard) it trains a student (no KD),
distills a lite detector from the full pipeline on the train split, and on the val split reports:
int8 eps error and |ΔP| against fp32; per triage T, the share of frames escalated, frames/s and speed-up
against the full pipeline, and the recall lost against the full pipeline at the same final threshold.

    python benchmarks/bench_lite.py --config tiny                 # CPU
    python benchmarks/bench_lite.py --config default --images 512 # GPU, full-size models (random weights)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdet.cascade import Cascade  # noqa: E402
from streamdet.config import load_config  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.export.exporter import export_models  # noqa: E402
from streamdet.export.metadata import BatchRange  # noqa: E402
from streamdet.train import prepare, train  # noqa: E402
from streamdet.train.dataset import load_items, read_rgb, train_val  # noqa: E402
from streamdet.train.lite import distill_lite  # noqa: E402
from tests.checkpoints import save_adm  # noqa: E402
from tests.trainingdata import make_image_dataset  # noqa: E402


def timed(score, x: torch.Tensor, repeats: int) -> tuple[torch.Tensor, float]:
    """Scores of `x` and the best frames/s over `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scores = score(x)
        best = min(best, time.perf_counter() - start)
    return scores, len(x) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--images", type=int, default=96, help="dataset size (half real, half fake)")
    parser.add_argument("--epochs", type=int, default=4, help="student training epochs")
    parser.add_argument("--lite-epochs", type=int, default=15)
    parser.add_argument("--triage", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = load_config(args.config)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=args.epochs, batch=16, workers=0, kd=False, lr=1e-3, val_fraction=0.25))
    size = config.adm.image_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_image_dataset(root / "data", args.images // 2, {"gen": args.images - args.images // 2}, size=size, seed=1)
        adm = save_adm(root / "adm.pt", config.adm)
        prepare(data, config, adm=adm, dire=False)
        student = train(data, config, root / "run", resume=False).last
        lite = root / "lite.pth"
        distill_lite(data, config, student, lite, adm=adm, epochs=args.lite_epochs)

        _, val = train_val(load_items(data), config.train.val_fraction, config.train.seed)
        labels = torch.tensor([item.label for item in val], dtype=torch.bool)
        full = Detector.load(config, adm=adm, student=student)
        x = full.preprocess([read_rgb(data / item.path) for item in val])
        p_full, full_fps = timed(full.score, x, args.repeats)
        flagged = p_full >= config.threshold

        engines = root / "engines"
        export_models(config, "onnx", "int8", BatchRange.around(config.batch), engines, adm=adm, student=student, models=["noise"], calibrate=data)
        session = onnxruntime.InferenceSession(str(engines / "noise-int8.onnx"), providers=["CPUExecutionProvider"])
        eps_int8 = torch.cat([torch.from_numpy(session.run(None, {"x": x[i : i + config.batch].numpy()})[0]) for i in range(0, len(x), config.batch)])
        eps_fp32 = full.noise(x)
        with torch.no_grad():
            p_int8 = torch.sigmoid(full.backend.student(x, eps_int8))
        rel = float((eps_int8 - eps_fp32).norm() / eps_fp32.norm())
        dp = (p_int8 - p_full).abs()

        print(f"config {args.config} ({size}px), {len(val)} val frames ({int(labels.sum())} fake), threshold {config.threshold}, torch threads {torch.get_num_threads()}")
        print(f"full pipeline: {full_fps:.1f} frames/s, recall {float((flagged & labels).sum() / labels.sum()):.3f}, flags {int(flagged.sum())}")
        print(f"int8 noise model: eps relative error {rel:.4f}; |ΔP| mean {float(dp.mean()):.2e}, max {float(dp.max()):.2e}; decisions changed {int(((p_int8 >= config.threshold) != flagged).sum())}")
        print()
        print("| triage T | escalated | frames/s | speed-up | recall lost vs full | recall vs labels |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for triage in args.triage:
            cascade = Cascade.load(full, lite, triage)
            p, fps = timed(cascade.score, x, args.repeats)
            share = cascade.escalated / cascade.frames
            caught = p >= config.threshold
            lost = float((flagged & ~caught).sum() / max(1, int(flagged.sum())))
            recall = float((caught & labels).sum() / labels.sum())
            print(f"| {triage:.2f} | {share:.1%} | {fps:.1f} | {fps / full_fps:.2f}× | {lost:.1%} | {recall:.3f} |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
