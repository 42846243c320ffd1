"""Benchmark the scan engine end to end per sampling mode and backend, against the reference loop, in one run.

Random weights in the official architecture of the chosen config (speed does not depend on the values), on
generated H.264 clips. Prints markdown tables: the stages of one eager scan; then, per sampling mode (default
uniform 16 and all frames) and backend, end-to-end frames/s, the ratio to the reference loop (one frame at a
time, decode then compute, eager, guided-diffusion's own fp16 conversion on CUDA) measured in the same run on
the same frames (every clip, the same sampling: both sides score the same frame count), GPU busy %, peak memory
and batch; the largest batch one forward fits; and the CPU decoder's rate alone.

    python benchmarks/bench_scan.py --config tiny                                       # CPU, a minute or two
    python benchmarks/bench_scan.py --config default --backends torch,compile           # GPU, full-size models
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import Config, Sampling, load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from streamdet.files import atomic_path, write_text  # noqa: E402
from guided_diffusion import script_util  # noqa: E402
from streamdet.models.adm import build_diffusion, model_flags  # noqa: E402
from streamdet.preprocess import preprocess  # noqa: E402
from streamdet.video import iter_frames  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402

MODES = [("uniform 16", Sampling()), ("all frames", Sampling(mode="all"))]
GIB = 2**30


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 30) -> Path:
    """Encode a smooth moving pattern with libx264 (CRF 26, key frame every 250 frames), atomically."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=fps, options={"crf": "26", "g": "250"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                image = np.roll(base, shift=(2 * i, 4 * i), axis=(0, 1))
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


def clips_in(folder: Path, count: int, frames: int, width: int, height: int) -> list[Path]:
    """`count` clips in `folder`, reused when a previous run made them with the same size and length."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip{width}x{height}-{frames}f-{i}.mp4" for i in range(count)]
    return [p if p.exists() else make_clip(p, frames, width, height) for p in paths]


def random_weights(config: Config, folder: Path) -> Config:
    """`config` reading random ADM and student files in the official formats, saved in `folder`, so the backends
    load them as they would real ones."""
    adm, student = save_adm(folder / "adm.pt", config.adm), save_student(folder / "student.pth", random_student())
    return with_overrides(config, {"weights.adm": str(adm), "weights.student": str(student)})


def sampled(config: Config, sampling: Sampling) -> Config:
    """`config` with every field of `sampling` as its sampling settings."""
    return with_overrides(config, {f"sampling.{key}": value for key, value in dataclasses.asdict(sampling).items()})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float:
    """Peak memory since the last reset: the GPU allocator's on CUDA, the process's resident set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


class BusySampler:
    """Mean of `torch.cuda.utilization()` (NVML: % of its last sample period in which a kernel ran), read every 0.1 s in a thread."""

    def __init__(self, device: torch.device, period: float = 0.1) -> None:
        self.device, self.period = device, period
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "BusySampler":
        if self.device.type == "cuda" and self.readable():
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def readable(self) -> bool:
        try:
            torch.cuda.utilization(self.device)
            return True
        except Exception as exc:  # pynvml missing or NVML not answering: the column says '-'
            print(f"GPU busy % not measured: torch.cuda.utilization() failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            return False

    def sample(self) -> None:
        while not self.stop.wait(self.period):
            self.samples.append(torch.cuda.utilization(self.device))

    @property
    def percent(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


@dataclasses.dataclass
class Row:
    mode: str
    backend: str
    frames: int
    seconds: float
    busy: float | None
    peak: float
    batch: int | str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def finite_scores(results: list) -> int:
    """The number of frames scored; exits naming the file if any file failed or any score is not finite."""
    for r in results:
        if r.status != "ok":
            sys.exit(f"{r.path}: scan failed: {r.error}")
        bad = [f for f in r.frames if not math.isfinite(f.score)]
        if bad:
            sys.exit(f"{r.path}: frame {bad[0].index} scored {bad[0].score}: the benchmark's models give non-finite scores")
    return sum(len(r.frames) for r in results)


def scan_row(det: Detector, clips: list[Path], mode: str, sampling: Sampling) -> Row:
    """One end-to-end scan of every clip by the engine, timed, with the GPU busy sampled throughout."""
    engine = Engine(det, sampled(det.config, sampling))
    results: list = []
    reset_peak(det.device)
    with BusySampler(det.device) as busy:
        seconds = timed(lambda: results.extend(engine.scan(clips)), det.device)
    return Row(mode, det.backend.name, finite_scores(results), seconds, busy.percent, peak_gib(det.device), det.batch.size)


def reference_models(det: Detector, fp16: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The eager detector's UNet rebuilt as the reference server runs it (with `fp16`: guided-diffusion's own
    `use_fp16` + `convert_to_fp16()`, which streamdet's config refuses, hence `create_model` here) and its student in fp32."""
    unet = script_util.create_model(**{**model_flags(det.config.adm), "use_fp16": fp16})
    unet.load_state_dict(det.backend.noise_model.unet.state_dict())
    if fp16:
        unet.convert_to_fp16()
    student = copy.deepcopy(det.backend.student).float().to(memory_format=torch.contiguous_format)
    return unet.to(det.device).eval(), student.eval()


def reference_loop(det: Detector, clips: list[Path], mode: str, sampling: Sampling, fp16: bool) -> Row:
    """The reference way, on every frame `sampling` picks in every clip (the frames the engine's row scans): decode
    a frame, then guided-diffusion's p_mean_variance at t = 0 (full UNet forward with its timestep MLP), eps
    re-derived from x0, the student, the score read back."""
    unet, student = reference_models(det, fp16)
    diffusion = build_diffusion(det.config.adm)

    def one(image: np.ndarray) -> float:
        x = preprocess(image, det.image_size, det.device)
        t = torch.zeros(1, dtype=torch.long, device=det.device)
        x0 = diffusion.p_mean_variance(unet, x, t, clip_denoised=True)["pred_xstart"]
        score = torch.sigmoid(student(x, diffusion._predict_eps_from_xstart(x, t, x0))).item()
        if not math.isfinite(score):
            sys.exit(f"reference loop: score {score} on {mode}: the benchmark's models give non-finite scores")
        return score

    count = 0

    def run() -> None:
        nonlocal count
        for clip in clips:
            for frame in iter_frames(clip, sampling):
                one(frame.image)
                count += 1

    with torch.inference_mode():
        one(next(iter_frames(clips[0], Sampling(mode="all"))).image)  # warm-up: kernels, cuDNN's choices
        reset_peak(det.device)
        with BusySampler(det.device) as busy:
            seconds = timed(run, det.device)
    return Row(mode, "reference loop", count, seconds, busy.percent, peak_gib(det.device), 1)


def largest_batch(det: Detector, limit: int, seconds: float) -> str:
    """Double the batch of one eager noise + student forward from 1 until it fails (out of memory, or a kernel
    refusing the size), `limit` or `seconds`; says the largest that ran and why it stopped."""
    size, fits, started, failure = 1, 0, time.perf_counter(), ""
    with torch.inference_mode():
        while size <= limit and time.perf_counter() - started < seconds:
            try:
                x = torch.rand(size, 3, det.image_size, det.image_size, device=det.device) * 2 - 1
                det.backend.logits(x, det.backend.noise(x))
                sync(det.device)
            except RuntimeError as exc:  # torch.OutOfMemoryError is one; cuDNN and cuBLAS word theirs differently
                failure = "ran out of memory" if isinstance(exc, torch.OutOfMemoryError) else f"failed: {str(exc).splitlines()[0]}"
                break
            finally:
                x = None
                if det.device.type == "cuda":
                    torch.cuda.empty_cache()
            fits, size = size, size * 2
    if failure:
        return f"{fits} ({size} {failure})"
    return f">= {fits} (stopped at the {'batch limit' if size > limit else 'time cap'})"


def decode_rate(clips: list[Path], sampling: Sampling, workers: int) -> tuple[int, float]:
    """Frames the CPU decoder delivers per second for `sampling` with `workers` threads, one clip per thread."""
    jobs = [clips[i % len(clips)] for i in range(workers)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        frames = sum(pool.map(lambda clip: sum(1 for _ in iter_frames(clip, sampling)), jobs))
    return frames, time.perf_counter() - start


def stage_rows(det: Detector, clip: Path) -> list[tuple[str, int, float, float]]:
    """Frames/s of each stage on every frame of one clip: decode, preprocess, noise, student."""
    device, rows = det.device, []
    decoded: list = []
    rows.append(("decode+sample", timed(lambda: decoded.extend(iter_frames(clip, Sampling(mode="all"))), device)))
    images = [f.image for f in decoded]
    b = det.batch.size
    chunks = [images[i : i + b] for i in range(0, len(images), b)]
    xs: list[torch.Tensor] = []
    rows.append(("preprocess", timed(lambda: xs.extend(det.preprocess(c) for c in chunks), device)))
    eps: list[torch.Tensor] = []
    rows.append(("noise (ADM t=0)", timed(lambda: eps.extend(det.noise(x) for x in xs), device)))

    def run_student() -> None:
        with torch.inference_mode():
            for x, e in zip(xs, eps):
                det.backend.logits(x, e)

    rows.append(("student", timed(run_student, device)))
    return [(stage, len(images), s, len(images) / s) for stage, s in rows]


def warm_up(det: Detector) -> None:
    """One full batch through preprocess and both models: kernels, allocator, autocast caches."""
    images = [np.full((64, 64, 3), 127, np.uint8)] * det.batch.size
    det.score(det.preprocess(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--backends", default=None, help="comma-separated: torch, compile (default: torch,compile on CUDA, torch on the CPU)")
    parser.add_argument("--frames", type=int, default=None, help="frames per generated clip (default 64; 150 for full-size models)")
    parser.add_argument("--size", default=None, help="clip resolution WxH (default 640x360; 1920x1080 for full-size models)")
    parser.add_argument("--videos", type=int, default=None, help="clips scanned together (default 2; 8 for full-size models)")
    parser.add_argument("--media", type=Path, default=None, help="folder for the generated clips, reused across runs (default: a temporary one)")
    parser.add_argument("--reference-precision", choices=("auto", "fp16", "fp32"), default="auto", help="of the reference loop's UNet (auto: fp16 on CUDA)")
    parser.add_argument("--probe-limit", type=int, default=None, help="largest batch the probe tries (default 1024 on CUDA, 64 on the CPU)")
    parser.add_argument("--probe-seconds", type=float, default=60.0, help="time cap of the largest-batch probe")
    parser.add_argument("--decode-workers", type=int, default=len(os.sched_getaffinity(0)), help="threads of the decode-only rate (default: all cores)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this markdown file")
    args = parser.parse_args()

    unknown = set((args.backends or "torch").split(",")) - {"torch", "compile"}
    if unknown:
        parser.error(f"--backends {args.backends}: {', '.join(sorted(unknown))} is not torch or compile (bench_backends.py compares the others)")
    config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    full = config.adm.image_size >= 256
    frames = args.frames or (150 if full else 64)
    videos = args.videos or (8 if full else 2)
    size = args.size or ("1920x1080" if full else "640x360")
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        parser.error(f"--size {size}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    with tempfile.TemporaryDirectory(prefix="streamdet-bench-") as tmp:
        config = random_weights(config, Path(tmp))
        eager = Detector.load(with_overrides(config, backend="torch"))
        device = eager.device
        backends = (args.backends or ("torch,compile" if device.type == "cuda" else "torch")).split(",")
        started = time.perf_counter()
        clips = clips_in(args.media or Path(tmp) / "media", videos, frames, width, height)
        note(f"{videos} clips of {frames} frames at {width}x{height} ready in {time.perf_counter() - started:.1f} s")
        lines = report_lines(args, config, eager, clips, backends)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.markdown is not None:
        write_text(args.markdown, text)


def note(message: str) -> None:
    """Progress on stderr, so a run stopped early still shows how far it got."""
    print(message, file=sys.stderr, flush=True)


def report_lines(args: argparse.Namespace, config: Config, eager: Detector, clips: list[Path], backends: list[str]) -> list[str]:
    """Run every measurement and return the markdown tables."""
    device = eager.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    with av.open(str(clips[0])) as c:
        width, height, frames = c.streams.video[0].width, c.streams.video[0].height, c.streams.video[0].frames
    lines = [
        f"streamdet scan benchmark: config {args.config} ({config.adm.image_size}px ADM), device {name}, precision {eager.precision}, "
        f"{len(clips)} H.264 clips of {frames} frames at {width}x{height}",
        "",
    ]
    warm_up(eager)
    lines += ["| stage (eager, one clip, every frame) | frames | seconds | frames/s |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {s} | {n} | {sec:.2f} | {fps:.1f} |" for s, n, sec, fps in stage_rows(eager, clips[0])]
    note("stages done")
    fp16 = args.reference_precision == "fp16" or (args.reference_precision == "auto" and device.type == "cuda")
    rows = [reference_loop(eager, clips, mode, sampling, fp16) for mode, sampling in MODES]
    note(f"reference loop: {', '.join(f'{r.mode} {r.fps:.1f} frames/s' for r in rows)}")
    reference = {r.mode: r for r in rows}
    probe = largest_batch(eager, args.probe_limit or (1024 if device.type == "cuda" else 64), args.probe_seconds)
    note(f"largest batch: {probe}")
    for backend in backends:
        det = eager
        if backend != "torch":
            started = time.perf_counter()
            det = Detector.load(with_overrides(config, backend=backend))
            note(f"{backend}: loaded and warmed up in {time.perf_counter() - started:.1f} s")
        warm_up(det)
        for mode, sampling in MODES:
            rows.append(scan_row(det, clips, mode, sampling))
            if rows[-1].frames != reference[mode].frames:
                sys.exit(f"{backend}, {mode}: the engine scored {rows[-1].frames} frames, the reference loop {reference[mode].frames}: not the same inputs")
            note(f"{backend}, {mode}: {rows[-1].fps:.1f} frames/s")
    lines += [
        "",
        "| mode | backend | frames | frames/s | × reference | GPU busy % | peak GiB | batch |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: ([m for m, _ in MODES].index(r.mode), r.backend != "reference loop")):
        busy = "-" if r.busy is None else f"{r.busy:.0f}"
        lines.append(f"| {r.mode} | {r.backend} | {r.frames} | {r.fps:.1f} | {r.fps / reference[r.mode].fps:.1f} | {busy} | {r.peak:.2f} | {r.batch} |")
    lines += [
        "",
        f"Largest batch one eager noise + student forward fits ({eager.precision}): {probe}.",
        "GPU busy %: mean of torch.cuda.utilization() (NVML) read every 0.1 s during the row; peak GiB: "
        + ("torch.cuda.max_memory_allocated(), everything the process holds on the GPU (the eager models stay loaded beside compile's)."
           if device.type == "cuda" else "the process's peak resident set (never reset)."),
        f"Reference loop: one frame at a time, decode then compute, eager, {'fp16 (guided-diffusion convert_to_fp16)' if fp16 else 'fp32'} UNet, fp32 student, "
        "on the same frames as each mode's rows (every clip, the same sampling).",
        "",
        "| decode only (CPU, exact frames) | threads | frames | frames/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for mode, sampling in MODES:
        for workers in sorted({1, args.decode_workers}):
            n, seconds = decode_rate(clips, sampling, workers)
            lines.append(f"| {mode} | {workers} | {n} | {n / seconds:.1f} |")
    return lines


if __name__ == "__main__":
    main()
