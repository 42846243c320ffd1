"""Each method's preprocessing against its reference's loader, written independently in tests/reference.py with PIL and
torchvision, on non-square frames of odd sizes; `prepare` makes eps and DIRE each from its own method's input."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from streamdet.models.adm import load_adm
from streamdet.models.noise import FirstStepNoise
from streamdet.preprocess import preprocess, preprocess_boxes
from streamdet.train import prepare
from streamdet.train.cache import Cache
from streamdet.train.dataset import load_items

from .media import write_image
from .reference import dire_loader, distildire_loader, guided_diffusion_dire

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (height, width): odd sides, landscape and portrait, one that takes a single box halving at 64 (321×181) and one that
# takes two (1001×563 → 500×281 → 250×140); 203×97 is the tall reduction Pillow 13 would run vertically first.
SIZES = [(181, 321), (563, 1001), (203, 97)]


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour shapes with grain, H×W×3 uint8: resampling rounds differently all over it."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 9 + 2, width // 9 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("size", [64, 256])
def test_dire_rule_gives_the_reference_loaders_8_bit_image(height, width, size):
    image = photo_like(height, width)
    expected = torch.from_numpy(dire_loader(image, size)).permute(2, 0, 1)
    x = preprocess([image], size, rule="dire")[0]
    assert torch.equal(x, expected.float() / 127.5 - 1), "the ADM input is the reference's 8-bit image / 127.5 - 1, to the bit"
    distildire = preprocess([image], size)[0]
    assert (distildire - x).abs().max() > 6 / 127.5, "the two rules differ on this frame, so the comparison above says something"


@pytest.mark.parametrize("height, width", SIZES)
def test_distildire_rule_is_unchanged_the_reference_loader(height, width):
    image = photo_like(height, width, seed=1)
    x = preprocess([image], 64)[0]
    torch.testing.assert_close(x, distildire_loader(image, 64), rtol=0, atol=1e-5)  # scaling to [-1, 1] before or after the resize


def test_each_rule_reads_batches_and_regions_as_single_frames():
    """An N×H×W×3 batch is each of its frames; a square region is its pixels, loaded by the rule."""
    frames = np.stack([photo_like(181, 321, seed) for seed in (2, 3)])
    batch = preprocess(frames, 64, rule="dire")
    for frame, x in zip(frames, batch):
        assert torch.equal(x, torch.from_numpy(dire_loader(frame, 64)).permute(2, 0, 1).float() / 127.5 - 1)
    region = preprocess_boxes([frames[0]], [[(40, 10, 150, 150)]], 64, rule="dire")[0]
    assert torch.equal(region, torch.from_numpy(dire_loader(np.ascontiguousarray(frames[0][10:160, 40:190]), 64)).permute(2, 0, 1).float() / 127.5 - 1)


def test_prepare_makes_eps_and_dire_each_from_its_methods_input(tmp_path, tiny_config, tiny_adm_ckpt):
    """The cached DIRE is the DIRE reference's (its loader, guided-diffusion's DDIM, its quantization) within a level;
    the cached eps is the noise of DistilDIRE's input."""
    root = tmp_path / "ds"
    images = {"real/r.png": photo_like(97, 150, seed=4), "fake/gen/f.png": photo_like(181, 121, seed=5)}
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, image)
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, dire_steps=2))
    report = prepare(root, config, adm=tiny_adm_ckpt)
    assert (report.eps, report.dire, report.failed) == (2, 2, [])
    cache = Cache(root)
    unet = load_adm(tiny_config.adm, tiny_adm_ckpt)
    noise = FirstStepNoise(unet, tiny_config.adm)
    items = {item.path: item for item in load_items(root)}
    for name, image in images.items():
        x = torch.from_numpy(dire_loader(image, 64)).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            _, recon = guided_diffusion_dire(unet, 2, tiny_config.adm, x)
            eps = noise(distildire_loader(image, 64)[None])[0]
        expected = torch.floor((x - recon).abs() * 255 / 2).clamp(0, 255)[0]
        cached = cache.load_dire_uint8(items[name]).float()
        assert (cached - expected).abs().max() <= 1, name  # float32 rounding can move a value across a level
        assert (cached - expected).abs().mean() < 0.01, name
        torch.testing.assert_close(cache.load_eps(items[name]), eps, rtol=0, atol=2e-3 * eps.abs().max().item())  # stored as float16
