"""Generated frame datasets for the training tests: fakes carry a colour cast and a checkerboard, which a student can learn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.models import resnet50

from .media import write_image


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth gray texture (low-frequency noise, upsampled), H×W×3 uint8."""
    coarse = rng.uniform(40, 215, (size // 8, size // 8)).astype(np.float32)
    gray = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    gray = gray + rng.normal(0, 4, (size, size))
    return np.clip(np.repeat(gray[..., None], 3, axis=2), 0, 255).astype(np.uint8)


def fake_version(image: np.ndarray) -> np.ndarray:
    """What a 'generator' leaves behind: a red/blue cast plus a faint pixel checkerboard."""
    out = image.astype(np.int16)
    out[..., 0] += 45
    out[..., 2] -= 35
    h, w = image.shape[:2]
    checker = ((np.indices((h, w)).sum(axis=0) % 2) * 2 - 1) * 12
    out += checker[..., None].astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_graded_dataset(root: Path, n_real: int, n_fake: int, size: int, faint: float, seed: int) -> Path:
    """`root/real/` textures and `root/fake/gen/` textures with the generator's traces blended in at a strength drawn from [faint, 1]."""
    rng = np.random.default_rng(seed)
    for folder in ("real", "fake/gen"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n_real):
        write_image(root / "real" / f"r{i:03d}.png", texture(rng, size + 8 * (i % 3)))
    for i in range(n_fake):
        image = texture(rng, size + 8 * (i % 3)).astype(np.float32)
        strength = rng.uniform(faint, 1.0)
        blended = image + strength * (fake_version(image.astype(np.uint8)).astype(np.float32) - image)
        write_image(root / "fake" / "gen" / f"f{i:03d}.png", np.clip(blended.round(), 0, 255).astype(np.uint8))
    return root


def make_image_dataset(root: Path, n_real: int, fakes: dict[str, int], size: int = 64, seed: int = 0) -> Path:
    """`root/real/*.png` and `root/fake/<generator>/*.png` (sizes vary a little so preprocessing resizes)."""
    rng = np.random.default_rng(seed)
    (root / "real").mkdir(parents=True, exist_ok=True)
    for i in range(n_real):
        write_image(root / "real" / f"r{i:03d}.png", texture(rng, size + 8 * (i % 3)))
    for gen, n in fakes.items():
        (root / "fake" / gen).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_image(root / "fake" / gen / f"f{i:03d}.png", fake_version(texture(rng, size + 8 * (i % 3))))
    return root


def save_teacher(path: Path, seed: int = 0) -> Path:
    """torchvision's ResNet-50 with random weights, saved as torchvision's own ImageNet file is: a plain state_dict."""
    torch.manual_seed(seed)
    torch.save(resnet50(weights=None).state_dict(), path)
    return path
