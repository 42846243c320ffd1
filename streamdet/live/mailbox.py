"""Live frames and the one-slot-per-stream mailbox between reader threads and the detector.

Live means latest: each stream has a single slot holding the newest frame awaiting analysis. A reader
that delivers a frame while an older one still waits replaces it (the older one is dropped and counted),
so when the model is slower than the streams the backlog never grows and the latency from arrival to
score stays bounded by about one model call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LiveFrame:
    """One decoded RGB frame of a live stream with its identity and timing.

    `index` counts the stream's decoded frames from the start of the watch (across reconnects); `time` is
    the stream's continuous time in seconds (presentation times, carried over reconnects by the wall
    clock); `pts` is the raw presentation time of the current connection (None when the stream has none);
    `arrival` is the Unix time at which the frame was decoded, `arrival_mono` the same on the monotonic clock.
    """

    stream: str
    index: int
    time: float
    pts: float | None
    arrival: float
    arrival_mono: float
    image: np.ndarray


class LatestFrames:
    """At most one waiting frame per stream: `offer` replaces, `take` hands the waiting frames to the detector.

    When more streams wait than a batch holds, the streams served longest ago go first, so that every
    stream gets its turn (ordering by frame age would starve a stream whose frames keep being replaced).
    """

    def __init__(self) -> None:
        self._slots: dict[str, LiveFrame] = {}
        self._served: dict[str, int] = {}
        self._turn = 0
        self._changed = threading.Condition()

    def offer(self, frame: LiveFrame) -> LiveFrame | None:
        """Make `frame` its stream's waiting frame; return the older frame it replaced (dropped), if any."""
        with self._changed:
            dropped = self._slots.get(frame.stream)
            self._slots[frame.stream] = frame
            self._changed.notify()
        return dropped

    def take(self, limit: int, timeout: float) -> list[LiveFrame]:
        """Up to `limit` waiting frames, least recently served stream first, waiting at most `timeout` s for one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._slots:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._changed.wait(left)
            chosen = sorted(self._slots.values(), key=lambda f: (self._served.get(f.stream, -1), f.arrival_mono))[:limit]
            self._turn += 1
            for frame in chosen:
                del self._slots[frame.stream]
                self._served[frame.stream] = self._turn
            return chosen

    def __len__(self) -> int:
        with self._changed:
            return len(self._slots)
