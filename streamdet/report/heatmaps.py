"""`scan --explain`: every scored frame explained (`streamdet.explain`), its heatmap PNGs written, the top ones kept for the report.

`Heatmaps.add` is the scan's `on_scored` hook: each frame pays one more noise pass and a backward pass of the
student (only when asked for), is explained over the crop that gave its score (the center square by default),
and its frame score gets an `explain` entry (score, eps share, box, peak, files). Per input only the `keep`
highest-scoring frames' overlays stay in memory, small, for the HTML report.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..crops import center_box
from ..explain import explain, torch_student
from ..preprocess import rgb_array
from ..results import FrameScore
from ..video import Frame
from .overlay import render, write

REPORT_SIDE = 320  # the report's overlays fit in this many pixels


@dataclass
class Explained:
    """One kept frame's overlays for the report: its score, index, time, the PNGs (by kind) and its `explain` entry."""

    score: float
    index: int
    time: float
    pngs: dict[str, bytes]
    about: dict[str, Any]


class Heatmaps:
    """Explains each scored frame with the scorer's DistilDIRE student; PNGs into `folder` (if given), the top `keep` per input kept."""

    def __init__(self, scorer: Any, folder: str | Path | None = None, keep: int = 4) -> None:
        self.detector = getattr(scorer, "detector", scorer)  # a cascade explains with its full detector
        torch_student(self.detector)  # refuse a backend without a PyTorch student before any work
        self.folder = Path(folder) if folder is not None else None
        self.keep = keep
        self._heaps: dict[str, list[tuple[float, int, Explained]]] = {}

    def add(self, frame: Frame, scored: FrameScore) -> None:
        """The scan's `on_scored` hook."""
        if scored.score is None or not np.isfinite(scored.score):
            return
        image = rgb_array(frame.image)
        height, width = image.shape[:2]
        if scored.crop is not None:
            box = tuple(scored.crop)
            x, _ = self.detector.preprocess_crops([image], "cover", [("crop", [box])])
        else:
            box = center_box(height, width)
            x = self.detector.preprocess([image])
        (explanation,) = explain(self.detector, x, [box])
        about = explanation.to_dict()
        if self.folder is not None:
            stem = f"{Path(frame.source).name}.{frame.index:06d}"
            about["files"] = [str(p) for p in write(self.folder, stem, render(image, explanation))]
        scored.explain = about
        heap = self._heaps.setdefault(frame.source, [])
        key = (scored.score, -frame.index)
        if len(heap) >= self.keep and key <= heap[0][:2]:
            return
        item = (*key, Explained(scored.score, frame.index, frame.time, render(image, explanation, REPORT_SIDE), about))
        (heapq.heapreplace if len(heap) >= self.keep else heapq.heappush)(heap, item)

    def of(self, path: str) -> list[Explained]:
        """The kept frames of one input, highest score first."""
        return [kept for _, _, kept in sorted(self._heaps.get(path, []), key=lambda item: item[:2], reverse=True)]
