"""Which frames of a video to analyse: small pure selection functions over the settings' `Sampling` rule."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from streamdet.config import SAMPLING_MODES, SNAPS, Sampling

T = TypeVar("T")

MODES, SNAPS = SAMPLING_MODES, SNAPS  # the one sampling type lives with the settings

# Two timestamps closer than this (seconds) are the same instant: absorbs float rounding of pts.
TIME_EPS = 1e-6


def uniform_times(duration: float, count: int) -> list[float]:
    """Times ``(i + 0.5) * duration / count``: the centres of ``count`` equal slices of the video."""
    return [(i + 0.5) * duration / count for i in range(count)]


def pick_every(items: Iterable[tuple[int, T]], every: int) -> Iterator[T]:
    """Yield the items whose frame index is a multiple of ``every``."""
    return (item for index, item in items if index % every == 0)


def pick_fps(items: Iterable[tuple[float, T]], fps: float) -> Iterator[T]:
    """Yield the first item at or after each tick ``t0 + k / fps`` (``t0`` = first item's time), each item once."""
    origin: float | None = None
    next_tick = 0
    for time, item in items:
        if origin is None:
            origin = time
        ticks = (time - origin + TIME_EPS) * fps
        if ticks >= next_tick:
            next_tick = math.floor(ticks) + 1
            yield item


def pick_shown_at(items: Iterable[tuple[float, T]], targets: Sequence[float]) -> Iterator[T]:
    """Yield the item on screen at each sorted target time (the last one starting at or before it), each once.

    A target before the first item selects the first item. Stops reading ``items`` after the last target.
    """
    pending = deque(targets)
    held: tuple[int, T] | None = None
    last_yielded = -1
    for position, (time, item) in enumerate(items):
        while pending and time > pending[0] + TIME_EPS:
            pending.popleft()
            chosen_position, chosen = held if held is not None else (position, item)
            if chosen_position != last_yielded:
                last_yielded = chosen_position
                yield chosen
        if not pending:
            return
        held = (position, item)
    if pending and held is not None and held[0] != last_yielded:
        yield held[1]


def select(
    sampling: Sampling,
    items: Iterable[tuple[int, float, T]],
    duration: float | None,
    total: int | None,
) -> Iterator[tuple[int, float, T]]:
    """Keep the ``(index, time, payload)`` triples, in presentation order, that ``sampling`` selects.

    ``uniform`` needs ``duration`` (seconds) unless ``total`` (the frame count, if known) shows the video
    has no more frames than requested, in which case every frame is kept.
    """
    if sampling.mode in ("all", "keyframes"):
        return iter(items)
    if sampling.mode == "every":
        return pick_every(((triple[0], triple) for triple in items), sampling.every)
    if sampling.mode == "fps":
        return pick_fps(((triple[1], triple) for triple in items), sampling.fps)
    if total is not None and total <= sampling.frames:
        return iter(items)
    if duration is None:
        raise ValueError("uniform sampling needs the duration or a frame count")
    targets = uniform_times(duration, sampling.frames)
    return pick_shown_at(((triple[1], triple) for triple in items), targets)
