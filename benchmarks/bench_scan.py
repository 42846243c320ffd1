"""Benchmark the scan pipeline stage by stage, against a naive loop that does what the reference code does.

Prints frames/s per stage (decode+sample, preprocess, noise, student, end to end) and peak memory,
all measured in one run, with random weights in the official architecture of the chosen config.

    python benchmarks/bench_scan.py --config tiny                      # CPU
    python benchmarks/bench_scan.py --config default --frames 512      # GPU, full-size models
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from streamdet.config import load_config, with_overrides
from streamdet.detector import Detector
from streamdet.models.adm import build_adm, build_diffusion
from streamdet.models.noise import FirstStepNoise
from streamdet.models.student import Student
from streamdet.pipeline import scan
from streamdet.preprocess import preprocess
from streamdet.video import Sampling, iter_frames


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 30) -> Path:
    """Encode a moving test pattern with libx264 (the benchmark input)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.roll(base, shift=4 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def random_detector(config) -> Detector:
    """A detector with the config's architecture and random weights (speed does not depend on the values)."""
    torch.manual_seed(0)
    return Detector.from_models(FirstStepNoise(build_adm(config.adm), config.adm), Student().eval(), config)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mb(device: torch.device) -> float:
    """Peak memory so far: the GPU's allocator on CUDA, the process's resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def naive_loop(det: Detector, frames: list[np.ndarray]) -> None:
    """The reference way: one frame at a time, fp32, eager, guided-diffusion's own p_mean_variance at t = 0 (full UNet
    forward with its timestep MLP), then eps re-derived from x0, no overlap."""
    unet = copy.deepcopy(det.backend.noise_model.unet).float().to(memory_format=torch.contiguous_format)
    diffusion = build_diffusion(det.config.adm)
    student = copy.deepcopy(det.backend.student).float().to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        for image in frames:
            x = preprocess(image, det.image_size, det.device)
            t = torch.zeros(1, dtype=torch.long, device=det.device)
            x0 = diffusion.p_mean_variance(unet, x, t, clip_denoised=True)["pred_xstart"]
            torch.sigmoid(student(x, diffusion._predict_eps_from_xstart(x, t, x0))).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--frames", type=int, default=64, help="frames in the generated clip (all are scored)")
    parser.add_argument("--naive-frames", type=int, default=None, help="frames for the naive loop (default: all)")
    parser.add_argument("--size", default="640x360", help="clip resolution WxH")
    parser.add_argument("--videos", type=int, default=2, help="clips scanned together end to end")
    args = parser.parse_args()

    config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    det = random_detector(config)
    device = det.device
    width, height = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="streamdet-bench-"))
    clips = [make_clip(tmp / f"clip{i}.mp4", args.frames, width, height) for i in range(args.videos)]
    every = Sampling(mode="all")
    rows = []

    def row(stage: str, n: int, seconds: float, peak: float) -> None:
        rows.append((stage, n, seconds, n / seconds if seconds else float("inf"), peak))

    decoded: list = []
    reset_peak(device)
    seconds = timed(lambda: decoded.extend(iter_frames(clips[0], every)), device)
    row("decode+sample", len(decoded), seconds, peak_mb(device))
    images = [f.image for f in decoded]
    b = det.batch.size
    chunks = [images[i : i + b] for i in range(0, len(images), b)]

    det.score(det.preprocess(images[:b]))  # warm-up: kernels, allocator, autocast caches
    xs: list[torch.Tensor] = []
    reset_peak(device)
    seconds = timed(lambda: xs.extend(det.preprocess(c) for c in chunks), device)
    row("preprocess", len(images), seconds, peak_mb(device))
    eps: list[torch.Tensor] = []
    reset_peak(device)
    seconds = timed(lambda: eps.extend(det.noise(x) for x in xs), device)
    row("noise (ADM t=0)", len(images), seconds, peak_mb(device))

    def run_student() -> None:
        with torch.inference_mode():
            for x, e in zip(xs, eps):
                det.backend.logits(x, e)

    reset_peak(device)
    seconds = timed(run_student, device)
    row("student", len(images), seconds, peak_mb(device))
    results = []
    reset_peak(device)
    seconds = timed(lambda: results.extend(scan(det, clips, sampling=every)), device)
    total = sum(len(r.frames) for r in results)
    row(f"end to end ({args.videos} videos)", total, seconds, peak_mb(device))
    end_to_end_fps = rows[-1][3]

    n_naive = args.naive_frames or len(images)
    reset_peak(device)
    seconds = timed(lambda: naive_loop(det, images[:n_naive]), device)
    row("naive loop (reference)", n_naive, seconds, peak_mb(device))
    naive_fps = rows[-1][3]

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"streamdet scan benchmark: config {args.config}, {config.adm.image_size}px, device {name}, precision {det.precision}, batch {b}, clip {args.size}")
    print(f"{'stage':<28}{'frames':>8}{'seconds':>10}{'frames/s':>11}{'peak MB':>10}")
    for stage, n, s, fps, peak in rows:
        print(f"{stage:<28}{n:>8}{s:>10.2f}{fps:>11.1f}{peak:>10.0f}")
    print(f"end to end vs naive loop: {end_to_end_fps / naive_fps:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
