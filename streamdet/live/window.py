"""Verdicts over time for one stream: a sliding window of frame scores and alerts with hysteresis.

Window: the frames whose stream time lies within `window_s` seconds of the newest frame. Window score: the
same rule as a file's score (`streamdet.aggregate.file_score`), the mean of the highest `top_fraction`
(a quarter) of the window's frame scores, so a clip scanned as a file and the same clip watched as a stream
agree. No score is given while the window holds fewer than `min_frames` frames.

Alerts: an alert is raised when the window score reaches `raise_at`, and cleared only when it falls below
`clear_at` (lower than `raise_at`). A single noisy frame moves the window score by at most 1/k of its
value, k = ceil(top_fraction · frames) being the number of frames averaged, and a score hovering around
one threshold cannot make the alert flap because leaving the alert needs the other, lower threshold.

UNCERTAIN (with `uncertain` = (LOW, HIGH), off by default): the window score has a verdict, FAKE from HIGH,
UNCERTAIN from LOW, else REAL. It never raises an alert by itself; while no alert is active, the window
entering the band from below (or from having no score) is an `uncertain` transition, which the watch
reports as a `window_uncertain` event (not sent to the webhook, not counted as an alert). Alert events
then carry the window's verdict too.

Segments: the window also follows the stream's suspicious segments (`streamdet.segments`: frames at or above
`raise_at`, LOW with a band, merged across gaps shorter than `segment_gap_s`), and each transition carries the
segment it belongs to: for a raised alert the one under way, for a cleared one the one that just ended.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from streamdet.aggregate import UNCERTAIN, file_score, flagged, verdict
from streamdet.errors import ConfigError
from streamdet.results import Segment
from streamdet.segments import SegmentTracker


@dataclass(frozen=True)
class AlertRule:
    """Window length in seconds of stream time, thresholds, minimum frames and the top fraction averaged."""

    window_s: float = 10.0
    raise_at: float = 0.5
    clear_at: float = 0.35
    min_frames: int = 10
    top_fraction: float = 0.25
    uncertain: tuple[float, float] | None = None
    segment_gap_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ConfigError(f"--window must be positive, not {self.window_s}")
        if not 0.0 <= self.clear_at < self.raise_at <= 1.0:
            raise ConfigError(f"--clear-at {self.clear_at} and --raise-at {self.raise_at}: need 0 <= clear-at < raise-at <= 1")
        if self.min_frames < 1:
            raise ConfigError(f"--min-frames must be at least 1, not {self.min_frames}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(f"top_fraction must lie in (0, 1], not {self.top_fraction}")
        if self.uncertain is not None and not 0.0 <= self.uncertain[0] < self.uncertain[1] <= 1.0:
            raise ConfigError(f"--uncertain {self.uncertain[0]}:{self.uncertain[1]}: need 0 <= LOW < HIGH <= 1")


def default_min_frames(window_s: float, fps: float) -> int:
    """Half the frames a full window holds at the analysis rate (at least 3, at most a full window): an alert needs several seconds of evidence."""
    full = max(1, math.floor(window_s * fps + 1e-9))
    return min(full, max(3, full // 2))


@dataclass(frozen=True)
class Transition:
    """An alert raised or cleared, or the window turned UNCERTAIN: the window score then, its time span, frame count,
    flagged frames, and the suspicious segment it belongs to (None where no frame was flagged)."""

    kind: str
    score: float
    start: float
    end: float
    frames: int
    flagged: int
    segment: Segment | None = None


class AlertWindow:
    """Sliding window of one stream's frame scores with a hysteresis alert state."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.active = False
        self.score: float | None = None
        self.peak: float | None = None
        self.verdict: str | None = None
        self._items: deque[tuple[float, float]] = deque()
        self.segments = SegmentTracker(rule.raise_at, rule.uncertain, rule.segment_gap_s, keep=1)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, time: float, score: float) -> Transition | None:
        """Add the score of the frame at stream time `time` (non-decreasing); return the alert change it causes."""
        self._items.append((time, score))
        self.segments.add(time, score)
        while self._items[0][0] <= time - self.rule.window_s:
            self._items.popleft()
        if len(self._items) < self.rule.min_frames:
            self.score = self.verdict = None
            return None
        scores = [s for _, s in self._items]
        self.score = file_score(scores, self.rule.top_fraction)
        self.peak = self.score if self.peak is None else max(self.peak, self.score)
        before = self.verdict
        self.verdict = None if self.rule.uncertain is None else verdict(self.score, band=self.rule.uncertain)
        if not self.active and self.score >= self.rule.raise_at:
            self.active = True
            return self._transition("raised", scores)
        if self.active and self.score < self.rule.clear_at:
            self.active = False
            return self._transition("cleared", scores)
        if not self.active and self.verdict == UNCERTAIN and before not in (UNCERTAIN, "FAKE"):
            return self._transition("uncertain", scores)
        return None

    def _transition(self, kind: str, scores: list[float]) -> Transition:
        return Transition(kind, self.score, self._items[0][0], self._items[-1][0], len(scores), flagged(scores, self.rule.raise_at), self.segments.latest())
