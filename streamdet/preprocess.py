"""The one preprocessing function: uint8 RGB frames → N×3×S×S in [-1, 1] on the device (DESIGN.md §2)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .upload import FrameUploader


def resize_center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize N×C×H×W so the shorter side is `size` (bilinear, antialiased), then center-crop size×size."""
    h, w = x.shape[-2:]
    if min(h, w) != size:
        new = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
        x = F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=True)
        h, w = new
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def preprocess(
    frames: np.ndarray | Sequence[np.ndarray],
    size: int,
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
) -> torch.Tensor:
    """Frames (an N×H×W×3 uint8 array, or a list of H×W×3 arrays of any sizes) → N×3×size×size float32.

    With an `uploader`, the frames reach the device through its reusable pinned buffers (see `streamdet.upload`).
    """
    device = torch.device(device)
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = frames[None]
    groups = [frames] if isinstance(frames, np.ndarray) else [f[None] for f in frames]
    for group in groups:
        if group.dtype != np.uint8 or group.ndim != 4 or group.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 RGB N×H×W×3, got {group.dtype} {tuple(group.shape)}")
    if not groups:
        return torch.empty(0, 3, size, size, device=device)
    if uploader is not None:
        tensors = uploader.upload(groups)
    else:
        tensors = [torch.from_numpy(np.ascontiguousarray(group)).to(device) for group in groups]
    out = [resize_center_crop(t.permute(0, 3, 1, 2).float(), size) / 255 * 2 - 1 for t in tensors]
    return torch.cat(out).contiguous()


def preprocess_boxes(
    frames: Sequence[np.ndarray], boxes: Sequence[Sequence[tuple[int, int, int, int]]], size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Square regions `(x, y, w, h)` of each H×W×3 uint8 frame, each resized to size×size: Σ boxes × 3 × size × size in [-1, 1].

    The crop modes of `streamdet.crops` (cover, faces) come through here; the center rule keeps `preprocess`.
    """
    out = []
    for frame, frame_boxes in zip(frames, boxes, strict=True):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 RGB H×W×3, got {frame.dtype} {tuple(frame.shape)}")
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None].float()
        for x, y, w, h in frame_boxes:
            out.append(resize_center_crop(image[..., y : y + h, x : x + w], size) / 255 * 2 - 1)
    if not out:
        return torch.empty(0, 3, size, size, device=torch.device(device))
    return torch.cat(out).contiguous()
