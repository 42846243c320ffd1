"""Atomic file writes (temporary file in the same folder + os.replace), so a reader never sees half a file."""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto `path` when the block succeeds, removed when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    write_bytes(path, text.encode())


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Save an H×W×3 uint8 RGB array as a lossless PNG, atomically."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode a PNG")
    write_bytes(path, encoded.tobytes())


def write_npy(path: Path, array: np.ndarray) -> None:
    """Save a NumPy array as .npy, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes(path, buffer.getvalue())


def save_torch(path: Path, obj: Any) -> None:
    """`torch.save` atomically (large checkpoints go straight to the temporary file, not through memory)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
