"""What a file's first bytes say before anything is decoded: whether it is an image (by content, not by name),
its size, and whether that size is within the pixel limit, so that a hostile input is refused before it costs memory.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# The default limit, 100 million pixels (e.g. 10000 × 10000): decoding one needs about 1 GB (3 bytes a pixel for
# the decoded image, 4 for one float channel while it is resized). Above the limit an input is refused.
from streamdet.config import MAX_PIXELS as DEFAULT_MAX_PIXELS
from streamdet.errors import MediaError

# How the image formats streamdet decodes as images begin (JPEG, PNG, GIF, BMP, TIFF; WebP is RIFF....WEBP).
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


@dataclass(frozen=True)
class ImageHeader:
    """An image's format and size as its header gives them (``pixels`` None where Pillow refused to read the size)."""

    format: str
    width: int | None
    height: int | None

    @property
    def pixels(self) -> int | None:
        return None if self.width is None or self.height is None else self.width * self.height


def _opened(path: str) -> BinaryIO | None:
    """`path` open for reading if it is a regular file, else None; opened non-blocking, so a named pipe or a device
    is never waited on, and checked after opening, so it cannot be swapped in between."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def is_image(path: str) -> bool:
    """Whether a regular file's first bytes are those of an image format (a damaged image included): the content
    decides, never the name, so a video renamed ``.jpg`` is not taken for a picture."""
    file = _opened(path)
    if file is None:
        return False
    with file:
        try:
            head = file.read(16)
        except OSError:
            return False
    return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def image_header(path: str) -> ImageHeader | None:
    """An image's format and size as Pillow reads them from its header (the pixels are not decoded); None where
    Pillow does not know the file (it is left to the decoders)."""
    file = _opened(path)
    if file is None:
        return None
    with file:
        try:
            with Image.open(file) as image:
                return ImageHeader(image.format or "", *image.size)
        except Image.DecompressionBombError:
            return ImageHeader("", None, None)  # an image Pillow will not even size: far above its own limit
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None


def check_pixels(path: str, width: int, height: int, limit: int | None) -> None:
    """Refuse a picture of more than ``limit`` pixels (default ``DEFAULT_MAX_PIXELS``) with a one-line MediaError."""
    limit = DEFAULT_MAX_PIXELS if limit is None else limit
    if width * height > limit:
        raise MediaError(
            f"{path}: {width}×{height} is {width * height / 1e6:.0f} megapixels, above the limit of {limit / 1e6:g} "
            "(the max_pixels setting)"
        )


def check_image_header(path: str, limit: int | None) -> None:
    """Refuse an image whose header gives more pixels than ``limit``, before it is decoded."""
    header = image_header(path)
    if header is None:
        return
    if header.pixels is None:
        limit = DEFAULT_MAX_PIXELS if limit is None else limit
        if limit < 2 * Image.MAX_IMAGE_PIXELS:  # Pillow refuses only images above twice its limit
            raise MediaError(f"{path}: more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, above the limit of {limit / 1e6:g} (the max_pixels setting)")
        return
    check_pixels(path, header.width, header.height, limit)
