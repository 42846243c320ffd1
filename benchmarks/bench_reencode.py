"""Benchmark what a repeatable H.264 re-encode costs: `degrade.encode` with its repeatable x264 options (one thread,
no assembly) against x264's defaults, per clip, and how many different bitstreams each gives over --calls calls.

    python benchmarks/bench_reencode.py --size 256x256 --clip 16
    python benchmarks/bench_reencode.py --size 640x360 --clip 16
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from typing import Callable

import av
import cv2
import numpy as np

from streamdet.video import degrade


def frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """`n` smooth random colour frames with grain that drift a little, like a slow camera pan."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8), (width + 32, height + 32), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 24, base.shape, dtype=np.uint8)
    base = cv2.add(base, grain)
    return [np.ascontiguousarray(base[i : i + height, i : i + width]) for i in range(n)]


def x264_defaults(clip: list[np.ndarray], codec: str, crf: int) -> bytes:
    """What `degrade.encode` did before: the same clip, muxer and CRF with x264's own thread and CPU defaults."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(degrade.CODECS[codec], rate=degrade.REENCODE_FPS)
        stream.width, stream.height, stream.pix_fmt = clip[0].shape[1], clip[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in clip:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def measure(encode: Callable[[list[np.ndarray], str, int], bytes], clip: list[np.ndarray], crf: int, calls: int) -> tuple[float, int]:
    """Seconds per `encode` call (after one warm-up) and the number of distinct outputs."""
    encode(clip, "h264", crf)
    start = time.perf_counter()
    digests = {hashlib.sha256(encode(clip, "h264", crf)).hexdigest() for _ in range(calls)}
    return (time.perf_counter() - start) / calls, len(digests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="256x256", help="frame size WxH")
    parser.add_argument("--clip", type=int, default=16, help="frames per clip")
    parser.add_argument("--crf", type=int, default=30)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    width, height = (side - side % 2 for side in map(int, args.size.split("x")))
    clip = frames(args.clip, width, height)
    repeatable = measure(degrade.encode, clip, args.crf, args.calls)
    default = measure(x264_defaults, clip, args.crf, args.calls)
    print(f"h264 re-encode of {args.clip} frames {args.size} at CRF {args.crf}, {args.calls} calls each")
    print(f"{'x264 options':28s} {'ms/clip':>8s} {'distinct outputs':>17s}")
    print(f"{'defaults':28s} {default[0] * 1000:8.1f} {default[1]:17d}")
    print(f"{'threads=1, asm=0 (streamdet)':28s} {repeatable[0] * 1000:8.1f} {repeatable[1]:17d}")
    print(f"cost of repeatability: {repeatable[0] / default[0]:.1f}x")


if __name__ == "__main__":
    main()
