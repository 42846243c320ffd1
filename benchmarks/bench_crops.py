"""Benchmark the crop modes of `scan --crops`: crops per frame, scan rate, face-detection time, model cost per frame.

Random weights in the chosen config's architecture on generated H.264 clips (16:9 and 4:3, a drawn face moving
across each frame so `faces` finds one). Prints a markdown table per mode: frames and crops scored, crops per
frame, frames scored on a face (the rest fall back to the centre), seconds, frames/s and crops/s end to end, the
face detector's own ms per frame, and the model's cost per
frame in GFLOP for the full-size models (crops per frame × 2,251 GFLOP, docs/design.md §4). One detector serves
every mode: each mode is an engine around it with that `crops` setting, as `scan --crops` builds.

    python benchmarks/bench_crops.py --config tiny        # CPU, about a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config, with_overrides  # noqa: E402
from streamdet.crops import MODES, FaceFinder  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from streamdet.video import iter_frames  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402
from tests.media import drawn_face, make_video  # noqa: E402

FULL_GFLOP = 2240 + 11.0  # one 256×256 crop through the full-size ADM and student (docs/design.md §4)


def face_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A clip whose face (its oval two thirds of the height: the drawn face is found from about that size) crosses the frame."""
    size = height // 3

    def pattern(index: int, w: int, h: int) -> np.ndarray:
        cx = int(size + (w - 2 * size) * index / max(1, frames - 1))
        return drawn_face(w, h, cx, h // 2, size)

    return make_video(path, frames, (width, height), 30, pattern=pattern)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per clip (uniform)")
    parser.add_argument("--clip-frames", type=int, default=60, help="frames per generated clip")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated crop modes to time")
    args = parser.parse_args()
    config = load_config(args.config, {"device": "cpu" if args.config == "tiny" else None, "sampling.mode": "uniform", "sampling.frames": args.frames})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adm = save_adm(root / "adm.pt", config.adm)
        student = save_student(root / "student.pth", random_student(seed=1))
        config = with_overrides(config, {"weights.adm": str(adm), "weights.student": str(student)})
        clips = [face_clip(root / "wide.mp4", 1280, 720, args.clip_frames), face_clip(root / "four3.mp4", 640, 480, args.clip_frames)]
        detector = Detector.load(config)
        Engine(detector, config).scan(clips[:1])  # warm-up
        finder = FaceFinder()
        images = [f.image for clip in clips for f in iter_frames(str(clip), config.sampling)]
        started = time.perf_counter()
        for image in images:
            finder.faces(image)
        face_ms = (time.perf_counter() - started) / len(images) * 1000
        print(f"streamdet crop modes: config {args.config} ({config.adm.image_size}px), device {detector.device}, "
              f"{torch.get_num_threads()} threads, batch {detector.batch.size}, clips 1280x720 + 640x480, {args.frames} frames each; "
              f"{len(os.sched_getaffinity(0))} cores")
        print()
        print("| crops | frames | crops scored | crops/frame | on a face | seconds | frames/s | crops/s | face detection ms/frame | full-size GFLOP/frame |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for mode in args.modes.split(","):
            started = time.perf_counter()
            results = Engine(detector, with_overrides(config, crops=mode)).scan(clips)
            seconds = time.perf_counter() - started
            frames = [f for r in results for f in r.frames]
            crops = sum(len(f.crops) if f.crops else 1 for f in frames)
            per_frame = crops / len(frames)
            faces = sum(bool(f.crops) and f.crops[0]["kind"] == "face" for f in frames)
            print(f"| {mode} | {len(frames)} | {crops} | {per_frame:.2f} | {faces} | {seconds:.2f} | {len(frames) / seconds:.1f} | {crops / seconds:.1f} | "
                  f"{face_ms if mode == 'faces' else 0:.1f} | {per_frame * FULL_GFLOP:,.0f} |")


if __name__ == "__main__":
    main()
