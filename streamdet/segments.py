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
from typing import Iterable, Sequence

from .results import FAKE, UNCERTAIN, Segment


def _levels(threshold: float, band: Sequence[float] | None) -> tuple[float, float]:
    """(the score that flags a frame, the score that makes a segment FAKE)."""
    if band is None:
        return threshold, threshold
    low, high = band
    return low, high


def find_segments(
    points: Iterable[tuple[float, float | None]], threshold: float = 0.5, band: Sequence[float] | None = None, gap_s: float = 0.0
) -> list[Segment]:
    """Segments of (time, score) points, in time order; points without a score (None) are skipped.

    `gap_s` (seconds, >= 0) bridges a gap shorter than it between two runs; 0 merges nothing.
    """
    if gap_s < 0:
        raise ValueError(f"segment gap {gap_s!r}: expected seconds >= 0")
    flag, fake = _levels(threshold, band)
    scored = sorted((t, s) for t, s in points if s is not None)
    runs: list[tuple[int, int]] = []  # [first, last] indices into `scored` of each run of flagged frames
    for i, (_, score) in enumerate(scored):
        if score < flag:
            continue
        if runs and (runs[-1][1] == i - 1 or scored[i][0] - scored[runs[-1][1]][0] < gap_s):
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return [_segment(scored[first : last + 1], fake) for first, last in runs]


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
