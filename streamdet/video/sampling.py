"""Which frames of a video to analyse: small pure selection functions over the settings' `Sampling` rule."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
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


Triple = tuple  # (frame index, time in seconds, payload)


@dataclass(frozen=True)
class Mode:
    """One sampling mode: how it picks frames from ``(index, time, payload)`` triples in presentation order, and
    how many it takes of a video of ``total`` frames lasting ``duration`` seconds (None where only decoding counts).

    ``keys_only``: the decoder supplies key frames only (and may skip decoding the others); ``pick`` keeps them all.
    ``uses_duration``: the targets are times spread over the duration, unless the video is short enough to take whole.
    """

    pick: Callable[[Sampling, Iterable[Triple], float | None], Iterator[Triple]]
    expected: Callable[[Sampling, int | None, float | None], int | None]
    keys_only: bool = False
    uses_duration: bool = False


def _uniform(sampling: Sampling, items: Iterable[Triple], duration: float | None) -> Iterator[Triple]:
    if duration is None:
        raise ValueError("uniform sampling needs the duration or a frame count")
    return pick_shown_at(((triple[1], triple) for triple in items), uniform_times(duration, sampling.frames))


# The one table of sampling modes: adding a mode is an entry here, its name and parameter in `streamdet.config`.
MODE_RULES: dict[str, Mode] = {
    "uniform": Mode(_uniform, lambda s, total, duration: s.frames if total is None else min(s.frames, total), uses_duration=True),
    "every": Mode(lambda s, items, _: pick_every(((t[0], t) for t in items), s.every), lambda s, total, _: None if total is None else math.ceil(total / s.every)),
    "fps": Mode(lambda s, items, _: pick_fps(((t[1], t) for t in items), s.fps), lambda s, _, duration: None if duration is None else max(1, math.ceil(duration * s.fps))),
    "keyframes": Mode(lambda s, items, _: iter(items), lambda s, total, duration: None, keys_only=True),
    "all": Mode(lambda s, items, _: iter(items), lambda s, total, duration: total),
}
assert set(MODE_RULES) == set(MODES), "every mode of the settings has its rule"


def needs_duration(sampling: Sampling, total: int | None) -> bool:
    """Whether choosing the frames needs the video's duration: a time-spread mode on a video with more frames than it takes."""
    return MODE_RULES[sampling.mode].uses_duration and (total is None or total > sampling.frames)


def expected_frames(sampling: Sampling, total: int | None, duration: float | None) -> int | None:
    """About how many frames ``sampling`` takes from a video of ``total`` frames and ``duration`` seconds (None: unknown before decoding)."""
    return MODE_RULES[sampling.mode].expected(sampling, total, duration)


def select(
    sampling: Sampling,
    items: Iterable[tuple[int, float, T]],
    duration: float | None,
    total: int | None,
) -> Iterator[tuple[int, float, T]]:
    """Keep the ``(index, time, payload)`` triples, in presentation order, that ``sampling`` selects.

    A time-spread mode (``uniform``) needs ``duration`` (seconds) unless ``total`` (the frame count, if known)
    shows the video has no more frames than requested, in which case every frame is kept.
    """
    if MODE_RULES[sampling.mode].uses_duration and not needs_duration(sampling, total):
        return iter(items)
    return MODE_RULES[sampling.mode].pick(sampling, items, duration)
