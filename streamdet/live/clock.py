"""Stream time for live frames, and the per-stream analysis rate.

A live stream's presentation times restart at every reconnect, may be missing on some frames and may
jump backwards (a server restart, an HLS discontinuity). `StreamClock` turns them into one continuous,
never decreasing time per stream: within a connection it follows the presentation times; where they are
missing or go backwards, and across reconnects, it carries on by the wall clock. `RateSampler` then picks
frames at a fixed rate of that time.
"""

from __future__ import annotations


class StreamClock:
    """Continuous stream time in seconds from presentation times and monotonic arrival times."""

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None

    def reconnected(self) -> None:
        """Forget the presentation-time anchor: the next connection's times start over."""
        self._anchor = None

    def time(self, pts: float | None, arrival_mono: float) -> float:
        """The stream time of a frame presented at `pts` (seconds, or None) that arrived at `arrival_mono`."""
        carried = 0.0 if self._last is None else self._last[0] + max(0.0, arrival_mono - self._last[1])
        if pts is None:
            now = carried
        else:
            if self._anchor is None or (self._last is not None and self._anchor[1] + pts - self._anchor[0] < self._last[0]):
                self._anchor = (pts, carried)
            now = self._anchor[1] + pts - self._anchor[0]
        self._last = (now, arrival_mono)
        return now


class RateSampler:
    """Keeps frames at most `fps` per second of stream time, evenly spaced, whatever the stream's own rate."""

    _SLACK = 1e-3

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._next: float | None = None

    def due(self, time: float) -> bool:
        """True if the frame at stream time `time` is to be analysed."""
        if self._next is not None and time < self._next - self._SLACK:
            return False
        self._next = (time if self._next is None else self._next) + self.period
        if self._next <= time:
            self._next = time + self.period
        return True
