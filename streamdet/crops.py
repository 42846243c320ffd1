"""Which square regions of a frame are scored: the center rule, crops covering the whole frame, or faces.

Boxes are `(x, y, w, h)` in the frame's own pixels, so a score can be traced back to where it was seen.
`center` is the published rule (the middle square after resizing the short side, docs/design.md §2). `cover`
lays squares of the short side along the long side, overlapping by at least half a square, so anything
up to half the short side in size lies wholly inside one of them (2 squares for 4:3, 3 for 16:9).
`faces` finds faces with OpenCV's bundled Haar cascade (shipped in the opencv wheel, nothing downloaded)
and grows each into a square with a margin around it, clipped to the frame.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import ConfigError
from .video.frame import YuvImage

if TYPE_CHECKING:
    import torch

Box = tuple[int, int, int, int]
MODES = ("center", "cover", "faces")
FACE_MARGIN = 0.3  # each side of a face box grows by this share of its size: hair, chin and edges stay in view
_CASCADE = "haarcascade_frontalface_default.xml"


def center_box(height: int, width: int) -> Box:
    """The square the center rule keeps, in frame pixels."""
    side = min(height, width)
    return (int(round((width - side) / 2.0)), int(round((height - side) / 2.0)), side, side)


def cover_boxes(height: int, width: int) -> list[Box]:
    """Squares of the short side along the long side, evenly spaced, overlapping by at least half a square."""
    side = min(height, width)
    long = max(height, width)
    count = 1 + math.ceil((long - side) / (side / 2)) if long > side else 1
    starts = [int(round(i * (long - side) / max(1, count - 1))) for i in range(count)]
    if width >= height:
        return [(s, 0, side, side) for s in starts]
    return [(0, s, side, side) for s in starts]


def square_around(box: Box, height: int, width: int, margin: float = FACE_MARGIN) -> Box:
    """A square centred on `box`, its side the box's longer side grown by `margin` on each side, moved/clipped into the frame."""
    x, y, w, h = box
    side = min(int(round(max(w, h) * (1 + 2 * margin))), height, width)
    left = min(max(0, int(round(x + w / 2 - side / 2))), width - side)
    top = min(max(0, int(round(y + h / 2 - side / 2))), height - side)
    return (left, top, side, side)


class FaceFinder:
    """Frontal faces in RGB frames with OpenCV's bundled cascade (one instance per thread)."""

    def __init__(self, min_size: int = 24) -> None:
        self.min_size = min_size
        self._local = threading.local()

    def _cascade(self) -> "cv2.CascadeClassifier":
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            if not hasattr(cv2, "CascadeClassifier"):
                raise ConfigError(f"--crops faces: OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them); install opencv-python-headless<5")
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _CASCADE)
            if cascade.empty():
                raise ConfigError(f"--crops faces: OpenCV's bundled {_CASCADE} is missing from {cv2.data.haarcascades}; install opencv-python-headless<5")
            self._local.cascade = cascade
        return cascade

    def check(self) -> None:
        """Load the cascade now, so a missing one is a one-line error before any input is read."""
        self._cascade()

    def faces(self, image: np.ndarray) -> list[Box]:
        """The faces found in one H×W×3 RGB frame, as boxes, left to right."""
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        found = self._cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size))
        return sorted((tuple(int(v) for v in f) for f in found), key=lambda b: (b[0], b[1]))


def upright_size(image: np.ndarray | YuvImage | torch.Tensor) -> tuple[int, int]:
    """(height, width) of a frame as it is scored: an H×W×3 array, a ``YuvImage`` after its turn, or a 3×H×W tensor."""
    if isinstance(image, YuvImage):
        return (image.width, image.height) if image.turn[0] else (image.height, image.width)
    if isinstance(image, np.ndarray):
        return image.shape[0], image.shape[1]
    return int(image.shape[-2]), int(image.shape[-1])


def crop_boxes(image: np.ndarray | YuvImage | torch.Tensor, mode: str, finder: FaceFinder | None = None) -> tuple[str, list[Box]]:
    """What kind of crops one frame gets in `mode` (center, cover or face) and their boxes.

    A frame in which no face is found is scored by the center rule, and says so (kind `center`). Faces are
    found in RGB on the CPU, so `faces` takes H×W×3 arrays only; the other modes take any frame `preprocess` does.
    """
    height, width = upright_size(image)
    if mode == "cover":
        return "cover", cover_boxes(height, width)
    if mode == "faces":
        if not isinstance(image, np.ndarray):
            raise ValueError("crops faces: faces are found in RGB frames on the CPU; decode with planes off and the CPU decoder")
        boxes = [square_around(face, height, width) for face in (finder or FaceFinder()).faces(image)]
        return ("face", boxes) if boxes else ("center", [center_box(height, width)])
    if mode == "center":
        return "center", [center_box(height, width)]
    raise ValueError(f"crops {mode!r}: expected one of {', '.join(MODES)}")


def frame_spans(layout: Sequence[tuple[str, list[Box]]] | None, count: int) -> list[tuple[int, str | None, list[Box | None]]]:
    """Where each of `count` frames sits in a batch of crop rows: (its first row, kind, boxes); without a
    `layout` (the center rule), one row per frame and the box None."""
    spans = []
    start = 0
    for kind, boxes in layout if layout is not None else [(None, [None])] * count:
        spans.append((start, kind, boxes))
        start += len(boxes)
    return spans


def best_crop(scores: Sequence[float]) -> tuple[float, int]:
    """A frame's score from its crops' scores (the highest; NaN if any is not finite) and which crop gave it."""
    top = max(range(len(scores)), key=scores.__getitem__)
    return (scores[top] if all(math.isfinite(v) for v in scores) else math.nan), top
