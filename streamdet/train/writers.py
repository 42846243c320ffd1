"""Atomic writes of training files (PNG, .npy, checkpoints), on top of `streamdet.files`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..files import atomic_path, write_bytes


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
    """`torch.save` atomically and durably (large checkpoints go straight to the temporary file, not through memory;
    the temporaries a killed save left are removed)."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)
