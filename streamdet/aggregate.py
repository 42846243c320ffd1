"""Frame scores → a score and a verdict per file.

Rule: the file score is the mean of the highest `top_fraction` (default a quarter) of its frame
scores, and the file is FAKE when that score reaches the threshold. The mean of all frames would
hide a short synthetic segment; the maximum would flag a whole video for one noisy frame. The
top-quarter mean needs a consistent share of the sampled frames to agree, and for a single image
it is simply the image's score.
"""

from __future__ import annotations

import math
from typing import Sequence

FAKE = "FAKE"
REAL = "REAL"


def file_score(scores: Sequence[float], top_fraction: float = 0.25) -> float:
    """Mean of the highest ceil(top_fraction · n) frame scores (at least one)."""
    if not scores:
        raise ValueError("no frame scores to aggregate")
    k = max(1, math.ceil(top_fraction * len(scores)))
    return sum(sorted(scores, reverse=True)[:k]) / k


def verdict(score: float, threshold: float = 0.5) -> str:
    """FAKE when the score reaches the threshold, else REAL."""
    return FAKE if score >= threshold else REAL


def flagged(scores: Sequence[float], threshold: float = 0.5) -> int:
    """How many frames are FAKE on their own."""
    return sum(1 for s in scores if s >= threshold)
