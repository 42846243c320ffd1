"""Decoded frames out as upright RGB arrays, or as 4:2:0 planes where the device converts them as FFmpeg would."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

from streamdet.errors import MediaError
from streamdet.video.frame import YuvImage
from streamdet.video.orient import display_matrix, orient, upright_steps

# Pixel formats sent as planes (``planes=True``), each with whether it is full range by definition.
PLANAR_420 = {"yuv420p": False, "yuvj420p": True}
# FFmpeg's colour-matrix tags (AVColorSpace) it converts with BT.709, and with BT.601 (unspecified included).
BT709 = 1
BT601 = {2, 5, 6}
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """An upright ``H×W×3`` uint8 RGB copy of a decoded frame, whatever its pixel format."""
    return orient(frame.to_ndarray(format="rgb24", threads=1), display_matrix(frame))


def yuv_image(frame: av.VideoFrame, matrix: Sequence[int] | None) -> YuvImage | None:
    """The frame's planes as a ``YuvImage`` to turn by ``matrix``, where the device conversion matches FFmpeg's.

    That is 8-bit planar 4:2:0 with even sides (FFmpeg's rgb24 then repeats each chroma sample over 2×2
    pixels; odd sides and NV12 take its interpolating path) and a BT.601 or BT.709 matrix; None otherwise.
    """
    name = frame.format.name
    if name not in PLANAR_420 or frame.width % 2 or frame.height % 2:
        return None
    if frame.colorspace != BT709 and frame.colorspace not in BT601:
        return None
    full = PLANAR_420[name] or frame.color_range == FULL_RANGE
    turn = upright_steps(matrix)
    return YuvImage(frame.to_ndarray(), frame.width, frame.height, frame.colorspace == BT709, full, turn)


def converted(
    path: str, frame: av.VideoFrame, matrix: Sequence[int] | None | bool = True, planes: bool = False
) -> np.ndarray | YuvImage:
    """Upright RGB as ``to_rgb``, turned by ``matrix`` if given (``True``: the frame's own), errors as ``MediaError``.

    With ``planes``, a ``YuvImage`` instead where ``yuv_image`` takes the frame.
    """
    try:
        if matrix is True:
            matrix = display_matrix(frame)
        if planes and (image := yuv_image(frame, matrix)) is not None:
            return image
        return orient(frame.to_ndarray(format="rgb24", threads=1), matrix)  # threads=1: no swscale pool per frame
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"{path}: cannot convert {frame.format.name} frames to RGB ({exc})") from None
