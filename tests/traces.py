"""A planted generator trace and a student trained (the project's own trainer, a few steps) to find it, for the evidence tests.

The trace is a ±40-level pixel checkerboard in a 16×16 square, in phase with the frame's pixel grid wherever it is
planted, on a smooth gray texture: a stand-in for the periodic upsampling artefacts generators leave. The student
learns it from 64 images (the fakes carry it at a random place inside a random quadrant) in 24 steps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch

from streamdet.config import Config
from streamdet.models.student import Student, load_student
from streamdet.preprocess import preprocess
from streamdet.train import load_items, prepare, train
from streamdet.train.cache import Cache
from streamdet.train.dataset import read_rgb

from .checkpoints import save_student
from .media import write_image

SIDE = 16  # the trace's side in pixels
EPOCHS = 6
AMPLITUDE = 40


def texture(rng: np.random.Generator, height: int, width: int, shift: int = 0) -> np.ndarray:
    """A smooth gray texture (8×8 random levels, bicubic), H×W×3 float; `shift` pans it left by that many pixels."""
    coarse = rng.uniform(60, 190, (8, 8)).astype(np.float32)
    big = cv2.resize(coarse, (width * 2, height), interpolation=cv2.INTER_CUBIC)
    return np.repeat(big[:, shift : shift + width, None], 3, axis=2)


def plant(image: np.ndarray, x: int, y: int) -> np.ndarray:
    """`image` with the trace's top-left corner at (x, y), as uint8."""
    out = image.astype(np.float32).copy()
    rows, cols = np.indices(out.shape[:2])
    checker = ((rows + cols) % 2 * 2 - 1)[y : y + SIDE, x : x + SIDE]
    out[y : y + SIDE, x : x + SIDE] += AMPLITUDE * checker[..., None]
    return to_uint8(out)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def quadrant_corner(quadrant: int, size: int) -> tuple[int, int]:
    """(x, y) that centres the trace in quadrant 0 (top left), 1 (top right), 2 (bottom left) or 3 (bottom right) of a size×size image."""
    half = size // 2
    return (quadrant % 2) * half + (half - SIDE) // 2, (quadrant // 2) * half + (half - SIDE) // 2


def trace_dataset(root: Path, size: int, per_class: int = 32, seed: int = 0) -> Path:
    """`root/real/*.png` textures and `root/fake/gen/*.png` textures with the trace somewhere inside a random quadrant."""
    rng = np.random.default_rng(seed)
    for folder in ("real", "fake/gen"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    half = size // 2
    for i in range(per_class):
        write_image(root / "real" / f"r{i:03d}.png", to_uint8(texture(rng, size, size, int(rng.integers(0, size)))))
        quadrant = int(rng.integers(0, 4))
        x = (quadrant % 2) * half + int(rng.integers(0, half - SIDE + 1))
        y = (quadrant // 2) * half + int(rng.integers(0, half - SIDE + 1))
        write_image(root / "fake" / "gen" / f"f{i:03d}.png", plant(texture(rng, size, size, int(rng.integers(0, size))), x, y))
    return root


def train_trace_student(root: Path, config: Config, adm: Path) -> Path:
    """Prepare the trace dataset's eps with `adm` and train a student on it (BCE only, no JPEG or flips, which would change the trace)."""
    data = trace_dataset(root / "data", config.adm.image_size)
    settings = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, kd=False, workers=0, epochs=EPOCHS, batch=16, lr=1e-3, jpeg_prob=0.0, flip_prob=0.0, val_fraction=0.0, seed=1),
    )
    prepare(data, settings, adm=adm, dire=False)
    path = train(data, settings, root / "run").last
    return save_student(root / "trace-student.pth", refresh_batchnorm(load_student(path), data))


class _SixChannels(torch.nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.student(inputs[:, :3], inputs[:, 3:])


def refresh_batchnorm(student: Student, data: Path) -> Student:
    """Re-estimate the BatchNorm running statistics on the training images and their eps (torch's `update_bn`):
    after a few steps the running averages lag far behind the weights, and eval-mode scores are meaningless."""
    items, cache = load_items(data), Cache(data)
    size = cache.load_eps(items[0]).shape[-1]
    inputs = torch.cat([torch.cat([preprocess(read_rgb(data / i.path), size), cache.load_eps(i)[None]], 1) for i in items])
    torch.optim.swa_utils.update_bn([inputs[i : i + 16] for i in range(0, len(inputs), 16)], _SixChannels(student))
    return student.eval()
