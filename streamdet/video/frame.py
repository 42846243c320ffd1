"""The unit that flows through the pipeline: one decoded frame and its identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class YuvImage:
    """An 8-bit 4:2:0 picture left in its planes, for conversion to RGB on the device (``preprocess``).

    ``i420`` is ``height * 3/2 × width`` uint8: the Y plane, then the U and V planes (``height/2 × width/2``
    each) laid end to end. ``bt709`` picks the colour matrix (else BT.601) and ``full_range`` the JPEG range,
    as FFmpeg reads them from the frame; ``turn`` is (transpose, flip rows, flip columns), applied in that
    order to make the picture upright.
    """

    i420: np.ndarray
    width: int
    height: int
    bt709: bool
    full_range: bool
    turn: tuple[bool, bool, bool] = (False, False, False)


@dataclass(frozen=True)
class Frame:
    """One frame with the source it came from, its index and its time in seconds.

    ``image`` is upright RGB (``H×W×3`` uint8), a ``YuvImage`` where the decoder was asked for planes, or an
    upright RGB ``3×H×W`` uint8 tensor already on the GPU where NVDEC decoded it.
    """

    source: str
    index: int
    time: float
    image: np.ndarray | YuvImage | torch.Tensor
