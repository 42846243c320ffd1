"""Benchmark `streamdet batch` on a local Ray instance with 1, 2, … detector actors against the local scan of the same files.

Random weights in the official architecture of the chosen config, generated H.264 clips. Prints a markdown
table: frames/s end to end (Ray start, actor start-up and model loading included: what a user waits for) and
from the first finished file on (the steady rate), for the local scan and each actor count. Both sides build
the same engine from the same settings (each actor its own). Each Ray run starts a fresh local instance with
one CPU per actor plus `--decode-cpus` for the decode tasks (GPUs: one per actor on a GPU machine).

    python benchmarks/bench_cluster.py --config tiny --actors 1,2                 # CPU, about two minutes
    python benchmarks/bench_cluster.py --config default --actors 1 --frames 16    # GPU, full-size models
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_scan import make_clip  # noqa: E402
from streamdet.cluster import run_batch  # noqa: E402
from streamdet.config import Config, load_config, with_overrides  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402


def local_row(config: Config, clips: list[Path]) -> tuple[str, int, float, float]:
    """The local scan: model loading included in the end-to-end time, as in the Ray runs."""
    start = time.perf_counter()
    engine = Engine.load(config)
    first: list[float] = []
    results = engine.scan(clips, on_result=lambda r: first or first.append(time.perf_counter()))
    end = time.perf_counter()
    frames = sum(len(r.frames) for r in results)
    return "local scan", frames, frames / (end - start), _steady(results, first[0], end)


def _steady(results, first_done: float, end: float) -> float:
    """Frames of the files finished after the first one, per second since it finished."""
    frames = sum(len(r.frames) for r in results[1:])
    return frames / (end - first_done) if end > first_done else float("nan")


def ray_row(config: Config, clips: list[Path], actors: int, decode_cpus: int, gpus: int) -> tuple[str, int, float, float]:
    """One `run_batch` on a fresh local Ray instance with `actors` detector actors."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=actors + decode_cpus, num_gpus=gpus, include_dashboard=False, logging_level="ERROR")
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    first: list[float] = []
    cluster = {"cluster.actors": actors, "cluster.gpus_per_actor": 1.0 if gpus else 0.0, "cluster.part_rows": 1000}
    try:
        with tempfile.TemporaryDirectory() as out:
            summary = run_batch(with_overrides(config, cluster), [str(c) for c in clips], out,
                                on_progress=lambda p: first or p.done < 1 or first.append(time.perf_counter()))
    finally:
        ray.shutdown()
    end = time.perf_counter()
    label = f"ray, {actors} {'GPU' if gpus else 'CPU'} actor{'s' if actors > 1 else ''}"
    return label, summary.frames, summary.frames / (end - start), _steady(summary.results, first[0], end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--actors", default="1,2", help="comma-separated detector actor counts")
    parser.add_argument("--decode-cpus", type=int, default=1, help="CPUs for decode tasks beside the actors")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--length", type=int, default=48, help="frames per generated clip")
    parser.add_argument("--size", default="320x180", help="clip resolution WxH")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per clip (uniform)")
    args = parser.parse_args()

    gpus = torch.cuda.device_count()
    config = load_config(args.config, {"device": "cuda" if gpus else "cpu", "sampling.mode": "uniform", "sampling.frames": args.frames})
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adm = save_adm(root / "adm.pt", config.adm)
        student = save_student(root / "student.pth", random_student(seed=1))
        config = with_overrides(config, {"weights.adm": str(adm), "weights.student": str(student)})
        clips = [make_clip(root / f"clip{i}.mp4", args.length, width, height) for i in range(args.videos)]
        rows = [local_row(config, clips)]
        for actors in (int(a) for a in args.actors.split(",")):
            rows.append(ray_row(config, clips, actors, args.decode_cpus, min(gpus, actors)))
    device = torch.cuda.get_device_name(0) if gpus else f"CPU, {len(os.sched_getaffinity(0))} cores"
    print(f"streamdet batch benchmark: config {args.config}, {config.adm.image_size}px, {device}, batch {config.batch}, "
          f"{args.videos} clips {args.size} x {args.length} frames, {args.frames} sampled per clip")
    print()
    print("| run | frames | frames/s end to end | frames/s after the first file |")
    print("| --- | ---: | ---: | ---: |")
    for label, frames, total, steady in rows:
        print(f"| {label} | {frames} | {total:.1f} | {steady:.1f} |")


if __name__ == "__main__":
    main()
