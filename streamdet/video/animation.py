"""Animated GIF and WebP: told apart from stills, and animated WebP decoded with Pillow (FFmpeg here cannot).

An animated GIF is decoded like any video, by PyAV (FFmpeg's GIF demuxer times each frame from its delay).
FFmpeg's WebP decoder reads still pictures only, so an animated WebP's frames come from libwebp's animation
decoder through Pillow, composited as a browser shows them, each timed from the sum of the delays before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from streamdet.errors import MediaError
from streamdet.video.frame import Frame
from streamdet.video.sampling import MODE_RULES, Sampling, select
from streamdet.video.stats import DecodeStats

ANIMATED_EXTS = frozenset({".gif", ".webp"})


def is_animated(path: str | Path) -> bool:
    """Whether ``path`` is a GIF or WebP with more than one frame (False for anything unreadable)."""
    if Path(path).suffix.lower() not in ANIMATED_EXTS:
        return False
    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def decoded_by_pillow(path: str | Path) -> bool:
    """Whether ``path`` is an animated WebP, whose frames ``iter_animation`` reads instead of PyAV."""
    return Path(path).suffix.lower() == ".webp" and is_animated(path)


def animation_timing(path: str) -> tuple[tuple[int, int], list[float], float]:
    """The animation's (width, height), each frame's start time (s) and its duration, from the frames' delays."""
    starts, clock = [], 0.0
    try:
        with Image.open(path) as image:
            for number in range(image.n_frames):
                image.seek(number)
                image.load()  # WebP frames report their delay once decoded
                starts.append(clock)
                clock += image.info.get("duration", 0) / 1000
            size = image.size
    except (OSError, ValueError, EOFError) as exc:
        raise MediaError(f"{path}: cannot read the animation ({exc})") from None
    return size, starts, clock


def iter_animation(path: str, sampling: Sampling, stats: DecodeStats) -> Iterator[Frame]:
    """The frames of an animated WebP that ``sampling`` selects, as RGB, in order (``keyframes``: the first)."""
    _, starts, duration = animation_timing(path)
    triples = ((index, time, index) for index, time in enumerate(starts))
    if MODE_RULES[sampling.mode].keys_only:
        triples = iter([(0, 0.0, 0)])  # an animation's one key frame is its first
    chosen = select(sampling, triples, duration if duration > 0 else None, len(starts))
    stats.decoded = len(starts)
    stats.duration = duration if duration > 0 else None
    with Image.open(path) as image:
        for index, time, number in chosen:
            image.seek(number)
            stats.sampled += 1
            yield Frame(source=path, index=index, time=time, image=np.asarray(image.convert("RGB")).copy())
