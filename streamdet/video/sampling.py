"""Which frames of a video to analyse, as a value plus small pure selection functions."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from streamdet.errors import ConfigError

T = TypeVar("T")

MODES = ("uniform", "every", "fps", "keyframes", "all")
SNAPS = ("none", "keyframes")

# Two timestamps closer than this (seconds) are the same instant: absorbs float rounding of pts.
TIME_EPS = 1e-6


@dataclass(frozen=True)
class Sampling:
    """A frame-selection rule: ``mode`` plus the parameter that mode uses.

    - ``uniform``: ``frames`` frames spread evenly over the duration (all frames if the video has fewer).
    - ``every``: every ``every``-th frame by index (0, n, 2n, ...).
    - ``fps``: ``fps`` frames per second of presentation time, the first frame at or after each tick.
    - ``keyframes``: only key frames, decoded without decoding the frames between them.
    - ``all``: every frame.

    ``snap="keyframes"`` (``uniform`` only) moves each uniform target to the nearest key frame: much faster
    (key frames decode alone) but the times are only as close as the key-frame interval allows.
    """

    mode: str = "uniform"
    frames: int = 16
    every: int = 1
    fps: float = 1.0
    snap: str = "none"

    def __post_init__(self) -> None:
        """Reject values that cannot select anything, so errors surface where the rule is made."""
        if self.mode not in MODES:
            raise ConfigError(f"sampling mode {self.mode!r} is not one of {', '.join(MODES)}")
        for name in ("frames", "every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"sampling {name!r} must be a whole number >= 1, got {value!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not 0 < self.fps < math.inf:
            raise ConfigError(f"sampling 'fps' must be a finite number > 0, got {self.fps!r}")
        if self.snap not in SNAPS:
            raise ConfigError(f"sampling 'snap' must be one of {', '.join(SNAPS)}, got {self.snap!r}")
        if self.snap != "none" and self.mode != "uniform":
            raise ConfigError(f"sampling 'snap' applies to uniform sampling only, not {self.mode!r}")

    @classmethod
    def parse(cls, spec: str) -> Sampling:
        """Build a rule from a CLI/config string: ``uniform[:N]``, ``every:N``, ``fps:R``, ``keyframes`` or ``all``."""
        mode, _, value = spec.strip().lower().partition(":")
        if mode not in MODES:
            raise ConfigError(f"sampling {spec!r}: mode must be one of {', '.join(MODES)}")
        if not value:
            if mode in ("every", "fps"):
                raise ConfigError(f"sampling {spec!r}: {mode} needs a value, e.g. '{mode}:2'")
            return cls(mode=mode)
        if mode in ("keyframes", "all"):
            raise ConfigError(f"sampling {spec!r}: {mode} takes no value")
        try:
            number = float(value) if mode == "fps" else int(value)
        except ValueError:
            raise ConfigError(f"sampling {spec!r}: {value!r} is not a valid number for {mode}") from None
        field = {"uniform": "frames", "every": "every", "fps": "fps"}[mode]
        return cls(mode=mode, **{field: number})


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
