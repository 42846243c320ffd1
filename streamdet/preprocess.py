"""Each method's preprocessing, its reference's: uint8 RGB frames → N×3×S×S in [-1, 1] on the device (docs/design.md §2).

DistilDIRE resizes the frame as a float tensor (bilinear, antialiased; torchvision's `Resize` + `CenterCrop`);
DIRE loads it as guided-diffusion's `image_datasets.center_crop_arr` does, through PIL's 8-bit resampling,
which `center_crop_arr` below reproduces exactly on the device.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .upload import FrameUploader
from .video.frame import YuvImage

# (Kr, Kb) of the colour matrices FFmpeg converts 4:2:0 video with.
_KR_KB = {False: (0.299, 0.114), True: (0.2126, 0.0722)}
# 8-bit pictures of more pixels than this are made float one channel at a time (the result is identical).
_LARGE = 1 << 22
# PIL's 8-bit resampling (libImaging/Resample.c) weighs with fixed-point coefficients of 22 fractional bits.
_PRECISION_BITS = 22

# What `Detector.preprocess` returns: one tensor, or one per rule where a detector's methods read different inputs.
Inputs = Union[torch.Tensor, dict[str, torch.Tensor]]


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
def _box(x: np.ndarray) -> np.ndarray:
    return ((x > -0.5) & (x <= 0.5)).astype(np.float64)


def _bicubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution with a = −0.5, the operations in PIL's order (so the doubles are PIL's)."""
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * -0.5
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


_FILTERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {"box": (_box, 0.5), "bicubic": (_bicubic, 2.0)}


@functools.lru_cache(maxsize=64)
def _taps(in_size: int, out_size: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """For each output sample of one axis, the input indices it reads and their fixed-point weights (out × taps),
    computed in doubles as PIL's `precompute_coeffs` and `normalize_coeffs_8bpc` do (weights past a sample's
    span are 0, their indices clamped)."""
    kernel, support = _FILTERS[kind]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    taps = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    count = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - first
    offsets = np.arange(taps)
    inside = offsets[None, :] < count[:, None]
    weights = np.where(inside, kernel(((offsets[None, :] + first[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale)), 0.0)
    total = np.zeros(out_size)
    for j in range(taps):  # summed in PIL's order: doubles are not associative
        total = total + weights[:, j]
    weights = np.divide(weights, total[:, None], out=weights.copy(), where=total[:, None] != 0.0)
    scaled = weights * float(1 << _PRECISION_BITS)
    fixed = np.trunc(np.where(weights < 0, scaled - 0.5, scaled + 0.5)).astype(np.int32)
    index = np.minimum(first[:, None] + offsets[None, :], in_size - 1)
    return torch.from_numpy(index), torch.from_numpy(fixed)


def _resample_rows(x: torch.Tensor, out_size: int, kind: str) -> torch.Tensor:
    """One 8-bit pass of PIL's resampling down the rows (dim −2) of an int32 tensor of values 0..255: each output row
    is the weighted sum of its taps, rounded (half up) and clipped to 0..255, in the same int32 arithmetic."""
    index, weight = (t.to(x.device) for t in _taps(x.shape[-2], out_size, kind))
    total = torch.full((*x.shape[:-2], out_size, x.shape[-1]), 1 << (_PRECISION_BITS - 1), dtype=torch.int32, device=x.device)
    for j in range(index.shape[1]):
        total += x.index_select(-2, index[:, j]) * weight[:, j, None]
    return (total >> _PRECISION_BITS).clamp_(0, 255)


def _pil_resize(x: torch.Tensor, width: int, height: int, kind: str) -> torch.Tensor:
    """`Image.resize((width, height), kind)` of N×C×H×W int32 8-bit values as Pillow up to 12 does it: the horizontal
    pass, then the vertical one, each rounded to 8 bits (Pillow 13 runs some reductions vertically first)."""
    if width != x.shape[-1]:
        x = _resample_rows(x.transpose(-1, -2).contiguous(), width, kind).transpose(-1, -2)
    if height != x.shape[-2]:
        x = _resample_rows(x.contiguous(), height, kind)
    return x


def center_crop_arr(x: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×H×W 8-bit values (uint8, or floats with whole values) → N×C×size×size uint8 as the DIRE reference loads
    an image (guided-diffusion's `center_crop_arr`): while the short side is at least 2·size, halve it with PIL's box
    filter; bicubic resize so the short side is size (each side `round(side · scale)`); crop offset `(side − size) // 2`."""
    x = x.to(torch.int32)
    while min(x.shape[-2:]) >= 2 * size:
        x = _pil_resize(x, x.shape[-1] // 2, x.shape[-2] // 2, "box")
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    x = _pil_resize(x, round(w * scale), round(h * scale), "bicubic")
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top : top + size, left : left + size].to(torch.uint8)


def _distildire(image: torch.Tensor, size: int) -> torch.Tensor:
    """DistilDIRE's rule (its dataset's `Resize(S, antialias=True)` + `CenterCrop(S)` on the frame in [-1, 1])."""
    return scaled(image, size)


def _dire(image: torch.Tensor, size: int) -> torch.Tensor:
    """DIRE's rule (`compute_dire.py`'s loader: `center_crop_arr`, then `uint8 / 127.5 − 1`)."""
    return center_crop_arr(image, size).float() / 127.5 - 1


# Each method's rule: upright N×3×H×W RGB, values 0..255, → N×3×S×S in [-1, 1].
RULES: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {"distildire": _distildire, "dire": _dire}


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


def preprocess_each(
    frames: np.ndarray | Sequence[np.ndarray | YuvImage | torch.Tensor],
    size: int,
    rules: Iterable[str],
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
    boxes: Sequence[Sequence[tuple[int, int, int, int]]] | None = None,
) -> dict[str, torch.Tensor]:
    """The frames (as `preprocess` takes them) sent to the device once and preprocessed by each rule in `rules`
    (method names, see `RULES`): rule → N×3×size×size float32. With `boxes`, the square regions `(x, y, w, h)` of
    each frame instead, each resized to size×size: rule → Σ boxes × 3 × size × size."""
    device = torch.device(device)
    rules = list(dict.fromkeys(rules))
    images = _on_device(list(frames) if boxes is not None else frames, device, uploader)
    if boxes is not None:
        images = [image[..., y : y + h, x : x + w] for image, frame_boxes in zip(images, boxes, strict=True) for x, y, w, h in frame_boxes]
    if not images:
        return {rule: torch.empty(0, 3, size, size, device=device) for rule in rules}
    return {rule: torch.cat([RULES[rule](image, size) for image in images]).contiguous() for rule in rules}


def preprocess(
    frames: np.ndarray | Sequence[np.ndarray | YuvImage | torch.Tensor],
    size: int,
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
    rule: str = "distildire",
) -> torch.Tensor:
    """Frames (an N×H×W×3 uint8 array, or a list of H×W×3 arrays of any sizes) → N×3×size×size float32 by `rule`
    (the method whose reference's preprocessing to apply: distildire, or dire).

    List items may also be `YuvImage`s (their planes go to the device and are converted to RGB there) or
    3×H×W uint8 RGB tensors (frames NVDEC decoded on the device: they skip the uploader).
    With an `uploader`, the frames reach the device through its reusable pinned buffers (see `streamdet.upload`).
    """
    return preprocess_each(frames, size, [rule], device, uploader)[rule]


def preprocess_boxes(
    frames: Sequence[np.ndarray | YuvImage | torch.Tensor],
    boxes: Sequence[Sequence[tuple[int, int, int, int]]],
    size: int,
    device: torch.device | str = "cpu",
    uploader: FrameUploader | None = None,
    rule: str = "distildire",
) -> torch.Tensor:
    """Square regions `(x, y, w, h)` of each frame (as `preprocess` takes them), each resized to size×size by `rule`:
    Σ boxes × 3 × size × size in [-1, 1].

    The crop modes of `streamdet.crops` (cover, faces) come through here; the center rule keeps `preprocess`.
    """
    return preprocess_each(frames, size, [rule], device, uploader, boxes)[rule]


def one_or_each(each: dict[str, torch.Tensor]) -> Inputs:
    """The one tensor of a single rule, else the mapping rule → tensor (what a detector's `preprocess` returns)."""
    return next(iter(each.values())) if len(each) == 1 else each


def for_rule(x: Inputs, rule: str) -> torch.Tensor:
    """The tensor preprocessed by `rule` out of `Inputs` (a lone tensor is taken to be it)."""
    return x[rule] if isinstance(x, Mapping) else x


def take_rows(x: Inputs, rows: torch.Tensor) -> Inputs:
    """The given rows (frames) of every tensor in `x`."""
    return {rule: t[rows.to(t.device)] for rule, t in x.items()} if isinstance(x, Mapping) else x[rows.to(x.device)]


def rgb_array(image: np.ndarray | YuvImage | torch.Tensor) -> np.ndarray:
    """Any frame form the pipeline carries (RGB array, `YuvImage`, 3×H×W tensor) as upright H×W×3 uint8 RGB on the host."""
    if isinstance(image, np.ndarray):
        return image
    tensor = _on_device([image], torch.device("cpu") if isinstance(image, YuvImage) else image.device, None)[0][0]
    return tensor.permute(1, 2, 0).clamp(0, 255).to(torch.uint8).cpu().numpy()
