"""Display-matrix math: how a decoded picture is turned upright, as FFmpeg's autorotate does."""

from __future__ import annotations

import math
from collections.abc import Sequence

import av
import numpy as np


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's display matrix (FFmpeg's 3×3 fixed-point layout), or None if it has none."""
    data = frame.side_data.get("DISPLAYMATRIX")
    return tuple(int(v) for v in np.frombuffer(bytes(data), dtype=np.int32)) if data is not None else None


def rotation_degrees(matrix: Sequence[int] | None) -> int:
    """Counter-clockwise rotation of a display matrix in whole degrees in [-180, 180], as ffprobe reports it."""
    if matrix is None:
        return 0
    return round(-math.degrees(math.atan2(matrix[1], matrix[0])))


def upright_steps(matrix: Sequence[int] | None) -> tuple[bool, bool, bool]:
    """(transpose, flip rows, flip columns), in that order, that turn a picture upright as FFmpeg's autorotate does.

    The display matrix is snapped to 90° steps (flips included).
    """
    if matrix is None:
        return False, False, False
    a, b, _, c, d = matrix[:5]
    if transposes(matrix):
        return True, c > 0, b > 0
    return False, d < 0, a < 0


def orient(image: np.ndarray, matrix: Sequence[int] | None) -> np.ndarray:
    """Turn a decoded ``H×W×C`` image upright as FFmpeg's autorotate does (see ``upright_steps``)."""
    transpose, flip_rows, flip_cols = upright_steps(matrix)
    if transpose:
        image = image.transpose(1, 0, 2)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def transposes(matrix: Sequence[int] | None) -> bool:
    """Whether a display matrix swaps width and height (a rotation by ±90°)."""
    return matrix is not None and abs(matrix[0]) + abs(matrix[4]) < abs(matrix[1]) + abs(matrix[3])
