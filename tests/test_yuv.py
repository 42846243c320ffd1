"""YUV planes converted on the device: the same RGB as PyAV's rgb24 and the same scan scores as the RGB path.

FFmpeg's rgb24 for even-sided 4:2:0 frames comes from its table-driven converter, whose fixed-point tables
round down (measured on random planes: up to 2 levels below an exact conversion in limited range, 1 in full
range). The device conversion is exact and rounded down, so it may differ by those 2 levels and no more; a
wrong matrix or range is off by 10 levels or more on these colourful frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from .media import make_video
from streamdet.detector import Detector
from .engines import configured, scan
from streamdet.preprocess import yuv420_to_rgb
from streamdet.video import Sampling, YuvImage, iter_frames
from streamdet.video.colour import yuv_image

FFMPEG_ROUNDING = 2  # levels of 255: see the module docstring

BT709, SMPTE170M, BT470BG = 1, 6, 5
LIMITED, FULL = 1, 2


def colours(index: int, width: int, height: int) -> np.ndarray:
    """Saturated gradients in all three channels plus noise, different per frame: every matrix coefficient matters
    and the random test student's scores differ from frame to frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    red = xx * 255 // max(1, width - 1) + 7 * index
    green = yy * 255 // max(1, height - 1)
    blue = (xx + yy) * 4 + 30 * index
    noise = np.random.default_rng(index).integers(0, 96, (height, width, 3))
    return ((np.stack([red, green, blue], -1) % 160) + noise).astype(np.uint8)


# (codec, container, pix_fmt, colorspace, color_range, what the decoder reports: format, bt709, full range)
TAGGED = {
    "untagged": ("libx264", "mp4", "yuv420p", None, None, ("yuv420p", False, False)),
    "601-limited": ("libx264", "mp4", "yuv420p", SMPTE170M, LIMITED, ("yuv420p", False, False)),
    "709-limited": ("libx264", "mp4", "yuv420p", BT709, LIMITED, ("yuv420p", True, False)),
    "601-full-yuvj": ("libx264", "mp4", "yuvj420p", BT470BG, FULL, ("yuvj420p", False, True)),
    "709-full-yuvj": ("libx264", "mp4", "yuv420p", BT709, FULL, ("yuvj420p", True, True)),
    "709-full-tagged": ("libvpx-vp9", "webm", "yuv420p", BT709, FULL, ("yuv420p", True, True)),
}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("yuv")
    files = {}
    for name, (codec, ext, pix_fmt, space, range_, _) in TAGGED.items():
        files[name] = make_video(
            root / f"{name}.{ext}", 3, (66, 50), codec=codec, pix_fmt=pix_fmt, pattern=colours,
            colorspace=space, color_range=range_,
        )
    return files


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def device_rgb(image: YuvImage, bt709: bool | None = None, full: bool | None = None) -> np.ndarray:
    """The device conversion run on CPU tensors, as H×W×3 (before turning upright)."""
    bt709 = image.bt709 if bt709 is None else bt709
    full = image.full_range if full is None else full
    rgb = yuv420_to_rgb(torch.from_numpy(image.i420), image.height, image.width, bt709, full)
    return rgb.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name", list(TAGGED))
def test_device_conversion_matches_pyav_rgb24(tagged: dict[str, Path], name: str) -> None:
    expected_format, bt709, full = TAGGED[name][-1]
    for frame in decoded(tagged[name]):
        assert frame.format.name == expected_format
        image = yuv_image(frame, None)
        assert image is not None and (image.bt709, image.full_range) == (bt709, full)
        reference = frame.to_ndarray(format="rgb24").astype(np.float32)
        assert np.abs(device_rgb(image) - reference).max() <= FFMPEG_ROUNDING
        assert np.abs(device_rgb(image, bt709=not bt709) - reference).max() > 5 * FFMPEG_ROUNDING
        assert np.abs(device_rgb(image, full=not full) - reference).max() > 5 * FFMPEG_ROUNDING


@pytest.mark.parametrize("rotation, hflip", [(90, False), (-90, False), (180, False), (0, True)])
def test_planes_turn_upright_like_the_rgb_path(tmp_path: Path, rotation: int, hflip: bool) -> None:
    path = make_video(tmp_path / "turned.mp4", 4, (66, 50), pattern=colours, rotation=rotation, hflip=hflip)
    rgb = list(iter_frames(path, Sampling(mode="all")))
    planes = list(iter_frames(path, Sampling(mode="all"), planes=True))
    assert [(f.index, f.time) for f in planes] == [(f.index, f.time) for f in rgb]
    for plain, yuv in zip(rgb, planes):
        assert isinstance(yuv.image, YuvImage)
        x = torch.from_numpy(device_rgb(yuv.image)).permute(2, 0, 1)
        transpose, flip_rows, flip_cols = yuv.image.turn
        x = x.transpose(1, 2) if transpose else x
        x = x.flip(1) if flip_rows else x
        x = x.flip(2) if flip_cols else x
        assert x.shape[1:] == plain.image.shape[:2]
        assert np.abs(x.permute(1, 2, 0).numpy() - plain.image).max() <= FFMPEG_ROUNDING


@pytest.mark.parametrize(
    "codec, ext, size, pix_fmt",
    [("ffv1", "mkv", (65, 49), "yuv420p"), ("libx264", "mp4", (66, 50), "yuv444p")],
)
def test_other_frames_fall_back_to_cpu_rgb(tmp_path: Path, codec: str, ext: str, size: tuple, pix_fmt: str) -> None:
    path = make_video(tmp_path / f"other.{ext}", 3, size, codec=codec, pix_fmt=pix_fmt, pattern=colours)
    rgb = list(iter_frames(path, Sampling(mode="all")))
    planes = list(iter_frames(path, Sampling(mode="all"), planes=True))
    assert len(planes) == len(rgb) == 3
    for plain, other in zip(rgb, planes):
        assert isinstance(other.image, np.ndarray)
        assert np.array_equal(other.image, plain.image)


@pytest.mark.slow
def test_scan_scores_agree_between_rgb_and_planes(tagged, tmp_path, tiny_config, tiny_adm_ckpt, student_ckpt) -> None:
    turned = make_video(tmp_path / "turned.mp4", 6, (66, 50), pattern=colours, rotation=90, colorspace=BT709)
    paths = [tagged["709-limited"], tagged["601-full-yuvj"], tagged["709-full-tagged"], turned]
    for path in paths:
        assert all(isinstance(f.image, YuvImage) for f in iter_frames(path, Sampling(mode="all"), planes=True))
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cpu", batch=4))
    sampling = Sampling(mode="all")
    rgb = scan(detector, paths, sampling=sampling, planes=False)
    yuv = scan(detector, paths, sampling=sampling, planes=True)
    assert [r.status for r in rgb + yuv] == ["ok"] * 2 * len(paths)
    for a, b in zip(rgb, yuv):
        assert [(f.index, f.time) for f in a.frames] == [(f.index, f.time) for f in b.frames]
        assert max(abs(fa.score - fb.score) for fa, fb in zip(a.frames, b.frames)) < 2e-3
    # The random student's P saturates on these frames, so also hold the logits to 5% of their spread.
    logits = [[logit(f.score) for f in r.frames] for r in rgb]
    spread = max(map(max, logits)) - min(map(min, logits))
    assert spread > 1.0, "scores must differ between frames for the agreement to mean anything"
    for expected, r in zip(logits, yuv):
        assert max(abs(x - logit(f.score)) for x, f in zip(expected, r.frames)) < 0.05 * spread


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the planes go through the pinned uploader")
def test_planes_through_the_cuda_uploader_score_like_rgb(tagged, tiny_config, tiny_adm_ckpt, student_ckpt) -> None:
    paths = [tagged["709-limited"], tagged["601-full-yuvj"]]
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cuda", precision="fp32"))
    rgb = scan(detector, paths, sampling=Sampling(mode="all"), planes=False)
    yuv = scan(detector, paths, sampling=Sampling(mode="all"))  # planes by default on CUDA
    for a, b in zip(rgb, yuv):
        assert [(f.index, f.time) for f in a.frames] == [(f.index, f.time) for f in b.frames]
        assert max(abs(fa.score - fb.score) for fa, fb in zip(a.frames, b.frames)) < 2e-3
