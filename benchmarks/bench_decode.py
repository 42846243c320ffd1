"""Benchmark host-side decoding and sampling against plain PyAV decoding of the same files, in one run.

Generates 1080p (and with --uhd 2160p) H.264 and HEVC files with key-frame intervals 30, 60 and 250, then
for each file and sampling mode prints sampled frames/s on one core and with N workers, decoded frames per
sampled frame, the cost as a ratio to a plain PyAV decode + rgb24 of the whole file, and the floor of each
mode (decoding only the reference frames from each GOP's key frame to its last target, without conversion;
for key-frame modes, only the key frames themselves), itself as a ratio to plain PyAV. "One core"
pins the process to one CPU (FFmpeg then uses one decoder thread); "N workers" pins it to N CPUs.
A second table shows the CPU time the device-side conversion saves: the same sampling decoded to rgb24
on the CPU and left as YUV planes for the device (``iter_frames(..., planes=True)``, what a CUDA scan does).
On the plain PyAV row, the processes column is N independent plain decodes at once, one per CPU, and their
throughput over one alone: what this machine's cores give decoding, the ceiling for any N-worker figure.
Like the CLI, the script first calls ``reuse_frame_buffers`` (glibc keeps freed frame buffers for reuse);
``--system-malloc`` measures with glibc's defaults instead.

    python benchmarks/bench_decode.py                      # 1080p, 10 s files, 2 workers
    python benchmarks/bench_decode.py --seconds 40 --uhd   # the issue's 40 s files, plus 2160p
    python benchmarks/bench_decode.py --tables conversion  # only the rgb24-vs-planes table
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.pool
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from streamdet.allocator import reuse_frame_buffers
from streamdet.video import DecodeStats, Sampling, iter_frames
from streamdet.video.chunks import MAX_TARGETS_PER_CHUNK, chunk_decoder
from streamdet.video.fileplan import plan_file
from streamdet.video.pool import OpenFiles
from streamdet.video.videofile import VideoFile
from streamdet.video.plan import read_index, runs, segments, split, targets

MODES = {
    "uniform 16 exact": Sampling(mode="uniform", frames=16),
    "uniform 16 snap keyframes": Sampling(mode="uniform", frames=16, snap="keyframes"),
    "fps 1": Sampling(mode="fps", fps=1.0),
    "keyframes": Sampling(mode="keyframes"),
    "all": Sampling(mode="all"),
}


def make_media(path: Path, codec: str, width: int, height: int, seconds: float, gop: int, fps: int = 30) -> Path:
    """Encode a panning smooth texture with moving blocks (compresses like camera footage, not like noise)."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (height // 24, width // 12, 3), dtype=np.uint8), (width * 2, height + 64), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    partial = path.with_suffix(".partial" + path.suffix)
    params = {"libx264": {"crf": "26", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"},
              "libx265": {"crf": "28", "preset": "fast", "x265-params": f"log-level=0:keyint={gop}:min-keyint={gop}:scenecut=0"}}[codec]
    with av.open(str(partial), "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=fps, options=params)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(int(seconds * fps)):
            shift = (index * 7) % width
            image = texture[(index // 3) % 64 : (index // 3) % 64 + height, shift : shift + width].astype(np.int16)
            image = image + grain
            y, x = (index * 11) % (height - 200), (index * 23) % (width - 200)
            image[y : y + 200, x : x + 200] = (index * 5) % 256
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    partial.rename(path)
    return path


def pinned(cores: int) -> None:
    """Run this process (and FFmpeg's threads, which follow the affinity) on the first ``cores`` CPUs."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0) | AVAILABLE)[:cores])


def timed(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Best wall time of ``repeat`` runs and the count the run returned."""
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def plain(path: Path) -> int:
    """Plain PyAV: decode every frame and convert it to rgb24."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(frame.to_ndarray(format="rgb24").shape[0] > 0 for frame in container.decode(stream))


def sampled(path: Path, sampling: Sampling, workers: int, stats: DecodeStats | None = None, planes: bool = False) -> int:
    """streamdet's decoder: the frames ``sampling`` selects, as RGB (or as YUV planes for the device)."""
    return sum(1 for _ in iter_frames(path, sampling, stats, workers, planes))


def floor(path: Path, sampling: Sampling) -> int:
    """The decoder's lower bound for a sampling: only reference frames, from each GOP's key frame to its last target."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        index = read_index(container, stream)
        duration = float(stream.duration * stream.time_base)
    chosen = targets(index, sampling, duration)
    parts = runs(segments(index, chosen))
    number_of = {packet.pts: packet.number for packet in index.packets}
    decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        context = stream.codec_context
        context.skip_frame = "NONREF"
        packets = ((number_of[p.pts], p) for p in container.demux(stream) if p.size and p.pts in number_of)
        for part in parts:
            for number, packet in packets:
                if number < part.first:
                    continue
                decoded += len(context.decode(packet))
                if number >= part.last:
                    break
            decoded += len(context.decode(None))
            context.flush_buffers()
    return decoded


def _chunk_in_process(args: tuple[str, str, int, int, bool]) -> int:
    """One worker process: decode its share (``part`` of ``parts``) of a file's GOP chunks, return the frame count."""
    path, mode, part, parts, tuned = args
    if tuned:
        reuse_frame_buffers()
    pinned_cpu = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, [pinned_cpu[part % len(pinned_cpu)]])
    stats = DecodeStats()
    with VideoFile(path) as video:
        plan = plan_file(video, MODES[mode], stats)
    chunks = split(plan.parts, parts, MAX_TARGETS_PER_CHUNK)
    mine = [chunk for i, chunk in enumerate(chunks) if i % parts == part]
    with OpenFiles(path, 1) as files:
        return sum(sum(1 for _ in chunk_decoder(files, runs(chunk), plan, stats, False)()) for chunk in mine)


def _plain_in_process(args: tuple[str, int, bool]) -> int:
    """One of N independent plain decodes of a file, pinned to its own CPU (together: the machine's ceiling)."""
    path, part, tuned = args
    if tuned:
        reuse_frame_buffers()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, [cpus[part % len(cpus)]])
    return plain(Path(path))


def processes(pool: multiprocessing.pool.Pool, path: Path, mode: str, workers: int) -> int:
    """The same GOP-parallel decode in worker processes instead of threads (frames not sent back: a lower bound)."""
    return sum(pool.map(_chunk_in_process, [(str(path), mode, part, workers, TUNED[0]) for part in range(workers)]))


def rows(path: Path, workers: int, repeat: int, pool: multiprocessing.pool.Pool) -> Iterator[list[str]]:
    """The table rows of one file: plain PyAV, then every sampling mode (after one untimed pass to warm caches)."""
    pinned(1)
    plain(path)
    plain_s, total = timed(lambda: plain(path), repeat)
    pinned(workers)
    plain_n_s, _ = timed(lambda: plain(path), repeat)
    jobs = [(str(path), part, TUNED[0]) for part in range(workers)]
    ceiling_s, frames = timed(lambda: sum(pool.map(_plain_in_process, jobs)), repeat)
    yield [path.name, "plain PyAV + rgb24", str(total), "1.00", f"{total / plain_s:.1f}", "1.00", "", "", f"{total / plain_n_s:.1f}",
           f"{plain_s / plain_n_s:.2f}", f"{frames / ceiling_s:.1f} ({frames / ceiling_s / (total / plain_s):.2f}×)"]
    for mode, sampling in MODES.items():
        pinned(1)
        stats = DecodeStats()
        one_s, count = timed(lambda: sampled(path, sampling, 1, stats), repeat)
        decoded = stats.decoded / repeat / max(1, count)
        floor_s, _ = timed(lambda: floor(path, sampling), repeat)
        pinned(workers)
        many_s, _ = timed(lambda: sampled(path, sampling, workers, None), repeat)
        proc_text = ""
        if mode in ("uniform 16 exact", "all"):
            proc_s, _ = timed(lambda: processes(pool, path, mode, workers), repeat)
            proc_text = f"{count / proc_s:.1f}"
        yield [path.name, mode, str(count), f"{decoded:.2f}", f"{count / one_s:.1f}", f"{one_s / plain_s:.3f}", f"{floor_s / plain_s:.3f}", f"{one_s / floor_s:.2f}",
               f"{count / many_s:.1f}", f"{one_s / many_s:.2f}", proc_text]


CONVERSION_MODES = ("uniform 16 exact", "all")


def converted(frames: list[av.VideoFrame], planes: bool) -> int:
    """Copy already decoded frames out as rgb24 (the CPU path) or as I420 planes (what the device path sends)."""
    return sum(frame.to_ndarray(format=None if planes else "rgb24").size > 0 for frame in frames)


def conversion_rows(path: Path, repeat: int) -> Iterator[list[str]]:
    """One core: frames/s of the conversion alone (60 decoded frames), then of decoding with each conversion."""
    pinned(1)
    with av.open(str(path)) as container:
        frames = [frame for _, frame in zip(range(60), container.decode(video=0))]
    rgb_s, count = timed(lambda: converted(frames, False), repeat)
    planes_s, _ = timed(lambda: converted(frames, True), repeat)
    yield [path.name, "conversion alone", str(count), f"{count / rgb_s:.1f}", f"{count / planes_s:.1f}", f"{rgb_s / planes_s:.2f}"]
    for mode in CONVERSION_MODES:
        rgb_s, count = timed(lambda: sampled(path, MODES[mode], 1), repeat)
        planes_s, _ = timed(lambda: sampled(path, MODES[mode], 1, planes=True), repeat)
        yield [path.name, mode, str(count), f"{count / rgb_s:.1f}", f"{count / planes_s:.1f}", f"{rgb_s / planes_s:.2f}"]


AVAILABLE: set[int] = set()
TUNED = [False]  # whether the allocator was tuned, for the worker processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each generated file (default 10 s).")
    parser.add_argument("--uhd", action="store_true", help="Also 2160p files (slow to generate on a small CPU).")
    parser.add_argument("--gops", default="30,60,250", help="Key-frame intervals (default 30,60,250).")
    parser.add_argument("--codecs", default="libx264,libx265", help="Encoders (default libx264,libx265).")
    parser.add_argument("--decode-workers", type=int, default=None, help="Decode threads (and processes) of the parallel columns, as `scan --decode-workers` (default: all available cores).")
    parser.add_argument("--repeat", type=int, default=2, help="Runs per figure; the best is kept (default 2).")
    parser.add_argument("--tables", default="decode,conversion", help="Tables to print: decode, conversion (default both).")
    parser.add_argument("--system-malloc", action="store_true", help="Leave glibc's malloc thresholds at their defaults.")
    parser.add_argument("--media", type=Path, default=Path("/tmp/streamdet-bench-decode"), help="Where generated files are kept between runs.")
    args = parser.parse_args()
    AVAILABLE.update(os.sched_getaffinity(0))
    TUNED[0] = not args.system_malloc and reuse_frame_buffers()
    workers = args.decode_workers or len(AVAILABLE)
    args.media.mkdir(parents=True, exist_ok=True)
    sizes = [(1920, 1080)] + ([(3840, 2160)] if args.uhd else [])
    files = [
        make_media(args.media / f"{height}p_{codec[3:]}_gop{gop}_{args.seconds:g}s.mp4", codec, width, height, args.seconds, int(gop))
        for width, height in sizes
        for codec in args.codecs.split(",")
        for gop in args.gops.split(",")
    ]
    print(f"bench_decode: {len(AVAILABLE)} cores available, {workers} workers, {args.seconds:g} s files at 30 fps, "
          f"best of {args.repeat}, frame buffers reused: {TUNED[0]}, load average before {os.getloadavg()[0]:.1f}\n")
    tables = args.tables.split(",")
    if "decode" in tables:
        decode_table(files, workers, args.repeat)
    if "conversion" in tables:
        header = ["file", "sampling", "sampled", "fps, rgb24 on CPU (1 core)", "fps, planes for the device (1 core)", "speed-up"]
        print("\n| " + " | ".join(header) + " |")
        print("| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |")
        for path in files:
            for row in conversion_rows(path, args.repeat):
                print("| " + " | ".join(row) + " |", flush=True)


def decode_table(files: list[Path], workers: int, repeat: int) -> None:
    """The main table: every sampling mode of every file against plain PyAV and the floor."""
    header = ["file", "sampling", "sampled", "decoded/sampled", "sampled fps, 1 core", "× plain (time)", "floor × plain (time)", "× floor (time)",
              f"sampled fps, {workers} workers (threads)", f"{workers}w / 1 core", f"sampled fps, {workers} processes"]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |")
    # spawned, not forked: a fork of a process running decoder threads can inherit a held lock and hang
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for path in files:
            for row in rows(path, workers, repeat, pool):
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
