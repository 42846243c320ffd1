"""The unit that flows through the pipeline: one decoded frame and its identity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One RGB frame (``H×W×3`` uint8) with the source it came from, its index and its time in seconds."""

    source: str
    index: int
    time: float
    image: np.ndarray
