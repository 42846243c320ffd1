"""The one preprocessing function: uint8 RGB frames → N×3×S×S in [-1, 1] on the device (docs/design.md §2)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .upload import FrameUploader
from .video.frame import YuvImage

# (Kr, Kb) of the colour matrices FFmpeg converts 4:2:0 video with.
_KR_KB = {False: (0.299, 0.114), True: (0.2126, 0.0722)}
# 8-bit pictures of more pixels than this are made float one channel at a time (the result is identical).
_LARGE = 1 << 22


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


def scaled(image: torch.Tensor, size: int) -> torch.Tensor:
    """`resize_center_crop` of N×3×H×W RGB with values 0..255 (uint8 or float), then to [-1, 1].

    A large uint8 picture is turned into floats one channel at a time, so it never has a whole float copy
    (12 bytes a pixel): interpolation treats channels independently, so the values are the same bit for bit.
    """
    if image.dtype == torch.uint8 and image[:, 0].numel() > _LARGE:
        channels = [resize_center_crop(image[:, c : c + 1].float(), size) for c in range(image.shape[1])]
        return torch.cat(channels, dim=1) / 255 * 2 - 1
    return resize_center_crop(image.float(), size) / 255 * 2 - 1


def yuv420_to_rgb(i420: torch.Tensor, height: int, width: int, bt709: bool, full_range: bool) -> torch.Tensor:
    """I420 planes (``height*3/2 × width`` uint8, any device) → 3×H×W float RGB with whole values 0..255.

    Matches FFmpeg's rgb24 for even sides: each chroma sample covers 2×2 pixels, the BT.601/BT.709 matrix and
    limited (16..235/240) or full range as tagged, and results rounded down as its table-driven converter does.
    kornia.color's YUV420 conversion is analog YUV with BT.601 weights, so it fits neither matrix nor range.
    """
    kr, kb = _KR_KB[bt709]
    kg = 1 - kr - kb
    quarter = height * width // 4
    flat = i420.reshape(-1)
    y = flat[: height * width].view(height, width).float()
    u = flat[height * width : height * width + quarter].view(height // 2, width // 2).float()
    v = flat[height * width + quarter : height * width + 2 * quarter].view(height // 2, width // 2).float()
    y, pb, pr = (y / 255, (u - 128) / 255, (v - 128) / 255) if full_range else ((y - 16) / 219, (u - 128) / 224, (v - 128) / 224)
    chroma = torch.stack([pb, pr]).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    pb, pr = chroma[0], chroma[1]
    r = y + 2 * (1 - kr) * pr
    b = y + 2 * (1 - kb) * pb
    g = y - (2 * kr * (1 - kr) / kg) * pr - (2 * kb * (1 - kb) / kg) * pb
    return torch.floor(torch.stack([r, g, b]) * 255).clamp_(0, 255)


def _upright(x: torch.Tensor, turn: tuple[bool, bool, bool]) -> torch.Tensor:
    """Apply a ``YuvImage.turn`` (transpose, flip rows, flip columns) to a C×H×W tensor."""
    transpose, flip_rows, flip_cols = turn
    if transpose:
        x = x.transpose(-1, -2)
    if flip_rows:
        x = x.flip(-2)
    if flip_cols:
        x = x.flip(-1)
    return x


def _rgb(tensor: torch.Tensor, group: np.ndarray | YuvImage | torch.Tensor) -> torch.Tensor:
    """An uploaded group (N×H×W×3 uint8, a YuvImage's planes, or a 3×H×W tensor) as N×3×H×W RGB, values 0..255
    (uint8 where it came as such: `scaled` makes it float)."""
    if isinstance(group, torch.Tensor):
        return tensor[None]
    if isinstance(group, YuvImage):
        rgb = yuv420_to_rgb(tensor, group.height, group.width, group.bt709, group.full_range)
        return _upright(rgb, group.turn)[None]
    return tensor.permute(0, 3, 1, 2)


def _on_device(
    frames: np.ndarray | Sequence[np.ndarray | YuvImage | torch.Tensor], device: torch.device, uploader: FrameUploader | None
) -> list[torch.Tensor]:
    """Frames as upright N×3×H×W RGB on the device (uint8, or float for YUV planes), values 0..255, one tensor per array or picture given."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = frames[None]
    groups = [frames] if isinstance(frames, np.ndarray) else [f if isinstance(f, (YuvImage, torch.Tensor)) else f[None] for f in frames]
    for group in groups:
        if isinstance(group, (YuvImage, torch.Tensor)):
            continue
        if group.dtype != np.uint8 or group.ndim != 4 or group.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 RGB N×H×W×3, got {group.dtype} {tuple(group.shape)}")
    arrays = [group.i420 if isinstance(group, YuvImage) else group for group in groups]
    host = [array for array in arrays if isinstance(array, np.ndarray)]
    if uploader is not None and host:
        sent = iter(uploader.upload(host))
    else:
        sent = iter([torch.from_numpy(np.ascontiguousarray(array)).to(device) for array in host])
    tensors = [next(sent) if isinstance(array, np.ndarray) else array.to(device) for array in arrays]
    return [_rgb(t, group) for t, group in zip(tensors, groups)]


def preprocess(
    frames: np.ndarray | Sequence[np.ndarray | YuvImage | torch.Tensor],
    size: int,
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
) -> torch.Tensor:
    """Frames (an N×H×W×3 uint8 array, or a list of H×W×3 arrays of any sizes) → N×3×size×size float32.

    List items may also be `YuvImage`s (their planes go to the device and are converted to RGB there) or
    3×H×W uint8 RGB tensors (frames NVDEC decoded on the device: they skip the uploader).
    With an `uploader`, the frames reach the device through its reusable pinned buffers (see `streamdet.upload`).
    """
    device = torch.device(device)
    images = _on_device(frames, device, uploader)
    if not images:
        return torch.empty(0, 3, size, size, device=device)
    return torch.cat([scaled(image, size) for image in images]).contiguous()


def preprocess_boxes(
    frames: Sequence[np.ndarray | YuvImage | torch.Tensor],
    boxes: Sequence[Sequence[tuple[int, int, int, int]]],
    size: int,
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
) -> torch.Tensor:
    """Square regions `(x, y, w, h)` of each frame (as `preprocess` takes them), each resized to size×size: Σ boxes × 3 × size × size in [-1, 1].

    The crop modes of `streamdet.crops` (cover, faces) come through here; the center rule keeps `preprocess`.
    """
    device = torch.device(device)
    images = _on_device(list(frames), device, uploader)
    out = [
        scaled(image[..., y : y + h, x : x + w], size)
        for image, frame_boxes in zip(images, boxes, strict=True)
        for x, y, w, h in frame_boxes
    ]
    if not out:
        return torch.empty(0, 3, size, size, device=device)
    return torch.cat(out).contiguous()


def rgb_array(image: np.ndarray | YuvImage | torch.Tensor) -> np.ndarray:
    """Any frame form the pipeline carries (RGB array, `YuvImage`, 3×H×W tensor) as upright H×W×3 uint8 RGB on the host."""
    if isinstance(image, np.ndarray):
        return image
    tensor = _on_device([image], torch.device("cpu") if isinstance(image, YuvImage) else image.device, None)[0][0]
    return tensor.permute(1, 2, 0).clamp(0, 255).to(torch.uint8).cpu().numpy()
