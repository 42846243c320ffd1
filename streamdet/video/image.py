"""Read a still image as upright RGB: OpenCV for the common formats, PyAV for the rest."""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.errors import MediaError
from streamdet.video.colour import to_rgb
from streamdet.video.headers import check_image_header, check_pixels
from streamdet.video.opening import check_file, os_problem
from streamdet.video.videofile import VideoFile


def read_image(path: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image to upright ``H×W×3`` uint8 RGB: EXIF orientation applied, alpha dropped, 16-bit scaled.

    One above ``max_pixels`` is refused from its header, before decoding (see ``streamdet.video.headers``).
    """
    check_file(path)
    check_image_header(path, max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: {os_problem(exc)}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is not None:
        check_pixels(path, image.shape[1], image.shape[0], max_pixels)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second copy of a large image
    with VideoFile(path) as video:
        frame = next(video.decode(), None)
        if frame is None:
            raise MediaError(f"{path}: not a readable image")
        return to_rgb(frame)
