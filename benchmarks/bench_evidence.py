"""Benchmark what evidence costs: `--explain` per frame against plain scoring, and C2PA provenance reading per file.

Random weights in the chosen config's architecture (the cost does not depend on what they learnt). Scoring is the
detector's own path (noise + student, inference mode); explaining is `streamdet.explain` (one fp32 forward and
backward of the student per frame) with the eps the scan already has, and again with eps computed anew; rendering
is the five overlay PNGs of a 640×360 frame. Provenance: `read_provenance` of files signed here with a test
certificate (c2pa hashes the whole file, so the cost grows with its size) and of unsigned ones.

    python benchmarks/bench_evidence.py --config tiny        # CPU, well under a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.explain import explain  # noqa: E402
from streamdet.provenance import read_provenance  # noqa: E402
from streamdet.report.overlay import render  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402
from tests.credentials import IPTC, make_credentials, sign  # noqa: E402
from tests.media import make_video, write_image  # noqa: E402


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of `repeats` runs, in seconds (the least disturbed by other jobs on a shared machine)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--frames", type=int, default=16, help="frames per timed batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = load_config(args.config, {"device": "cpu" if args.config == "tiny" else None})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adm, student = save_adm(root / "adm.pt", config.adm), save_student(root / "student.pth", random_student(seed=1))
        detector = Detector.load(with_overrides(config, {"weights.adm": str(adm), "weights.student": str(student)}))
        frames = np.stack([noise(i, 640, 360) for i in range(args.frames)])
        x = detector.preprocess(frames)
        eps = detector.noise(x)
        n = args.frames
        score_s = best_of(args.repeats, lambda: detector.score(x))
        student_s = best_of(args.repeats, lambda: detector.backend.logits(x, eps))
        reuse_s = best_of(args.repeats, lambda: explain(detector, x, eps=eps))
        fresh_s = best_of(args.repeats, lambda: explain(detector, x))
        explained = explain(detector, x[:1], eps=eps[:1])[0]
        render_s = best_of(args.repeats, lambda: render(frames[0], explained))

        credentials = make_credentials()
        actions = [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]
        files = {
            "JPEG 640×360, unsigned": write_image(root / "plain.jpg", frames[0]),
            "MP4 1 s 320×180, unsigned": make_video(root / "short.mp4", 25, (320, 180), 25, pattern=noise),
            "MP4 10 s 640×360, unsigned": make_video(root / "long.mp4", 250, (640, 360), 25, pattern=noise),
        }
        files["JPEG 640×360, signed"] = sign(files["JPEG 640×360, unsigned"], root / "signed.jpg", credentials, "Bench 1.0", actions)
        files["MP4 1 s 320×180, signed"] = sign(files["MP4 1 s 320×180, unsigned"], root / "short-signed.mp4", credentials, "Bench 1.0", actions)
        files["MP4 10 s 640×360, signed"] = sign(files["MP4 10 s 640×360, unsigned"], root / "long-signed.mp4", credentials, "Bench 1.0", actions)

        print(f"streamdet evidence benchmark: config {args.config} ({config.adm.image_size}px), device {detector.device}, "
              f"{torch.get_num_threads()} threads, {n} frames per batch, best of {args.repeats}; {len(os.sched_getaffinity(0))} cores")
        print()
        print("| step | ms/frame | × plain scoring |")
        print("| --- | ---: | ---: |")
        rows = [
            ("plain scoring (noise + student)", score_s),
            ("student alone (forward)", student_s),
            ("explain, eps reused from the scan", reuse_s),
            ("explain, eps computed again", fresh_s),
        ]
        for name, seconds in rows:
            print(f"| {name} | {seconds / n * 1000:.1f} | {seconds / score_s:.2f} |")
        print(f"| render 5 overlay PNGs (640×360) | {render_s * 1000:.1f} | {render_s * n / score_s:.2f} |")
        print()
        print("| file | size KiB | manifest | ms/file |")
        print("| --- | ---: | --- | ---: |")
        for name, path in files.items():
            got = read_provenance(path)
            seconds = best_of(args.repeats, lambda: read_provenance(path))
            state = ("valid" if got.valid else "invalid") if got.present else "none"
            print(f"| {name} | {path.stat().st_size / 1024:.0f} | {state} | {seconds * 1000:.1f} |")


if __name__ == "__main__":
    main()
