"""Frame scores → a score and a verdict per file.

Rule: the file score is the mean of the highest `top_fraction` (default a quarter) of its frame
scores, and the file is FAKE when that score reaches the threshold. The mean of all frames would
hide a short synthetic segment; the maximum would flag a whole video for one noisy frame. The
top-quarter mean needs a consistent share of the sampled frames to agree, and for a single image
it is simply the image's score.

With an uncertain band LOW:HIGH (off by default), scores from LOW up to HIGH are UNCERTAIN: FAKE needs
HIGH, REAL needs a score below LOW, so a verdict near the threshold is not presented as certain.
"""

from __future__ import annotations

import math
from typing import Sequence

FAKE = "FAKE"
REAL = "REAL"
UNCERTAIN = "UNCERTAIN"


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
