"""Frame scores → a score and a verdict per file.

Rule: the file score is the mean of the highest `top_fraction` (default a quarter) of its frame
scores, and the file is FAKE when that score reaches the threshold. The mean of all frames would
hide a short synthetic segment; the maximum would flag a whole video for one noisy frame. The
top-quarter mean needs a consistent share of the sampled frames to agree, and for a single image
it is simply the image's score.

With an uncertain band LOW:HIGH (off by default), scores from LOW up to HIGH are UNCERTAIN: FAKE needs
HIGH, REAL needs a score below LOW, so a verdict near the threshold is not presented as certain.
A concluded file also gets its suspicious segments (`streamdet.segments`), by the same threshold and band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .results import FAKE, REAL, UNCERTAIN, FileResult
from .segments import find_segments

if TYPE_CHECKING:
    from .config import Config

__all__ = ["FAKE", "REAL", "UNCERTAIN", "VerdictRule", "conclude", "file_score", "flagged", "parse_band", "verdict"]


def file_score(scores: Sequence[float], top_fraction: float = 0.25) -> float:
    """Mean of the highest ceil(top_fraction · n) frame scores (at least one)."""
    if not scores:
        raise ValueError("no frame scores to aggregate")
    k = max(1, math.ceil(top_fraction * len(scores)))
    return sum(sorted(scores, reverse=True)[:k]) / k


def verdict(score: float, threshold: float = 0.5, band: Sequence[float] | None = None) -> str:
    """FAKE when the score reaches the threshold, else REAL; with a band (LOW, HIGH): FAKE from HIGH, UNCERTAIN from LOW."""
    if band is None:
        return FAKE if score >= threshold else REAL
    low, high = band
    return FAKE if score >= high else UNCERTAIN if score >= low else REAL


def flagged(scores: Sequence[float], threshold: float = 0.5, band: Sequence[float] | None = None) -> int:
    """How many frames are FAKE on their own (at the band's HIGH where there is a band)."""
    limit = threshold if band is None else band[1]
    return sum(1 for s in scores if s >= limit)


def parse_band(text: str, name: str = "--uncertain") -> tuple[float, float]:
    """`LOW:HIGH` → (low, high) with 0 <= low < high <= 1; anything else is a ValueError naming `name`."""
    parts = text.split(":")
    try:
        low, high = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"{name} {text!r}: expected LOW:HIGH with 0 <= LOW < HIGH <= 1, e.g. 0.3:0.7")
    return low, high


@dataclass(frozen=True)
class VerdictRule:
    """The settings that turn a file's frame scores into its verdict: threshold, top fraction, and the band."""

    threshold: float = 0.5
    top_fraction: float = 0.25
    band: tuple[float, float] | None = None
    segment_gap_s: float = 0.0

    @classmethod
    def of(cls, settings: Config) -> VerdictRule:
        """The rule of a run's settings (its threshold, top fraction, uncertain band and segment gap)."""
        band = None if settings.uncertain is None else (settings.uncertain[0], settings.uncertain[1])
        return cls(settings.threshold, settings.top_fraction, band, settings.segment_gap_s)

    def verdict(self, scores: Sequence[float]) -> tuple[float, str, int]:
        """(file score, verdict, flagged frames) of a file's frame scores."""
        score = file_score(scores, self.top_fraction)
        return score, verdict(score, self.threshold, self.band), flagged(scores, self.threshold, self.band)


def conclude(result: FileResult, error: str | None, warning: str | None, rule: VerdictRule) -> FileResult:
    """Give a file whose frames are all scored its verdict: the one rule of every entry point.

    `error` and `warning` are what its decoder reported; a partial decode is a warning, no frame or a
    non-finite score an error.
    """
    result.frames.sort(key=lambda f: (f.index, f.time))
    if not result.frames:
        result.status = "error"
        result.error = error or f"{result.path}: no frames could be decoded"
        return result
    notes = [warning] if warning else []
    if error:
        notes.append(f"decoding stopped early: {error}")
    result.warning = "; ".join(notes) or None
    bad = [f for f in result.frames if not all(v is not None and math.isfinite(v) for v in (f.scores or {"": f.score}).values())]
    if bad:
        for frame in bad:
            frame.score = None
            for crop in frame.crops or []:
                crop["score"] = crop["score"] if crop["score"] is not None and math.isfinite(crop["score"]) else None
            frame.scores = {m: v if v is not None and math.isfinite(v) else None for m, v in frame.scores.items()} if frame.scores else None
        result.status = "error"
        result.error = (
            f"{result.path}: {len(bad)} of {len(result.frames)} frame scores are not finite (NaN or infinite), "
            "so there is no verdict; check the model weights and precision"
        )
        return result
    result.score, result.verdict, result.flagged = rule.verdict([f.score for f in result.frames])
    result.segments = find_segments([(f.time, f.score) for f in result.frames], rule.threshold, rule.band, rule.segment_gap_s)
    if result.frames[0].scores is not None:
        result.methods = {}
        for method in result.frames[0].scores:
            score, decision, count = rule.verdict([f.scores[method] for f in result.frames])
            result.methods[method] = {"verdict": decision, "score": score, "flagged": count}
    return result
