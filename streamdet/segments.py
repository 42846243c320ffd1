"""When in a video: suspicious segments, the runs of sampled frames whose scores are flagged.

A frame is flagged when its score reaches the threshold, or, with an uncertain band LOW:HIGH, when it reaches
LOW. Consecutive flagged frames (in time order) form a run; a run ends at the first scored frame below that
level. Runs whose gap (the next run's first frame time minus this run's last) is shorter than `gap_s` are
merged into one segment, the frames in the gap included, so a short dip does not split what a person sees as
one stretch. A segment is FAKE when its peak reaches the threshold (the band's HIGH), else UNCERTAIN.

Times are the sampled frames' presentation times: `start` is the first flagged frame's, `end` the last's. The
true edges lie within one sampling step (`sampling_step`) outside them, since frames in between were not
scored: a segment seen from 1.0 to 1.9 s at a 0.1 s step began after 0.9 s and ended before 2.0 s.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Iterable, Sequence

from .results import FAKE, UNCERTAIN, Segment


def _levels(threshold: float, band: Sequence[float] | None) -> tuple[float, float]:
    """(the score that flags a frame, the score that makes a segment FAKE)."""
    if band is None:
        return threshold, threshold
    low, high = band
    return low, high


class SegmentTracker:
    """The segments of (time, score) points fed in time order, one at a time: for a scan at the end, for a live
    stream as it goes (memory stays within one gap: a segment is closed as soon as no later frame can join it, and
    with `keep` only that many closed segments are kept)."""

    def __init__(self, threshold: float = 0.5, band: Sequence[float] | None = None, gap_s: float = 0.0, keep: int | None = None) -> None:
        if gap_s < 0:
            raise ValueError(f"segment gap {gap_s!r}: expected seconds >= 0")
        self.flag, self.fake = _levels(threshold, band)
        self.gap_s = gap_s
        self.closed: deque[Segment] = deque(maxlen=keep)
        self._span: list[tuple[float, float]] = []  # the open segment: first to last flagged point
        self._tail: list[tuple[float, float]] = []  # points below the flag level since its last flagged one

    def add(self, time: float, score: float) -> None:
        """Feed the next point (time non-decreasing)."""
        if score < self.flag:
            if self._span:
                self._tail.append((time, score))
                if time - self._span[-1][0] >= self.gap_s:  # no later flagged frame can be within the gap
                    self._close()
            return
        if self._span and (not self._tail or time - self._span[-1][0] < self.gap_s):
            self._span += [*self._tail, (time, score)]
            self._tail = []
            return
        self._close()
        self._span = [(time, score)]

    def _close(self) -> None:
        if self._span:
            self.closed.append(_segment(self._span, self.fake))
        self._span, self._tail = [], []

    @property
    def open(self) -> Segment | None:
        """The segment still open (its last flagged frame may not be the last), None when there is none."""
        return _segment(self._span, self.fake) if self._span else None

    def latest(self) -> Segment | None:
        """The open segment, else the last closed one."""
        return self.open or (self.closed[-1] if self.closed else None)

    def segments(self) -> list[Segment]:
        """Every segment so far, in time order, the open one last."""
        return [*self.closed, *([self.open] if self._span else [])]


def find_segments(
    points: Iterable[tuple[float, float | None]], threshold: float = 0.5, band: Sequence[float] | None = None, gap_s: float = 0.0
) -> list[Segment]:
    """Segments of (time, score) points, in time order; points without a score (None) are skipped.

    `gap_s` (seconds, >= 0) bridges a gap shorter than it between two runs; 0 merges nothing.
    """
    tracker = SegmentTracker(threshold, band, gap_s)
    for time, score in sorted((t, s) for t, s in points if s is not None):
        tracker.add(time, score)
    return tracker.segments()


def _segment(span: list[tuple[float, float]], fake: float) -> Segment:
    """The segment covering `span` (its first and last points flagged; bridged points in between count too)."""
    peak_time, peak = max(span, key=lambda p: (p[1], -p[0]))
    return Segment(
        kind=FAKE if peak >= fake else UNCERTAIN,
        start=span[0][0],
        end=span[-1][0],
        frames=len(span),
        peak=peak,
        peak_time=peak_time,
        mean=sum(s for _, s in span) / len(span),
    )


def sampling_step(times: Iterable[float]) -> float | None:
    """The median time between consecutive sampled frames (s): how finely segment edges are placed; None below two frames."""
    ordered = sorted(times)
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    return statistics.median(gaps) if gaps else None


def longest(segments: Sequence[Segment]) -> Segment | None:
    """The longest segment (the earliest among equals; FAKE before UNCERTAIN), None when there is none."""
    if not segments:
        return None
    return max(segments, key=lambda s: (s.duration, s.kind == FAKE, s.frames, -s.start))
