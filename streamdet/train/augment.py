"""Training augmentations: as in DistilDIRE, a horizontal flip shared by image, eps and DIRE and random JPEG on the
image, applied on the fly; and the draw of the degradations `prepare` applies to each cached augmented copy.

Every random choice comes from a generator seeded by (seed, epoch, sample index), so a run is
reproducible whatever the number of loader workers or processes, and a resumed run sees the same
augmentations as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..config import AugmentConfig
from ..video import degrade


@dataclass(frozen=True)
class Augment:
    """Flip probability, JPEG probability and quality range (inclusive)."""

    flip_prob: float = 0.5
    jpeg_prob: float = 1.0
    jpeg_min_quality: int = 10
    jpeg_max_quality: int = 99

    def rng(self, seed: int, epoch: int, index: int) -> np.random.Generator:
        """The generator for one sample in one epoch."""
        return np.random.default_rng([seed, epoch, index])

    def __call__(self, rng: np.random.Generator, x: torch.Tensor, *maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(x, *maps) augmented: `x` (3×S×S in [-1, 1]) may be JPEG-compressed; all are flipped together."""
        if rng.random() < self.jpeg_prob:
            x = jpeg(x, int(rng.integers(self.jpeg_min_quality, self.jpeg_max_quality + 1)))
        tensors = (x, *maps)
        if rng.random() < self.flip_prob:
            tensors = tuple(t.flip(-1) for t in tensors)
        return tensors


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A 3×S×S RGB image in [-1, 1] through a real JPEG encode/decode at `quality` (`degrade.jpeg`)."""
    pixels = ((x + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return torch.from_numpy(degrade.jpeg(np.ascontiguousarray(pixels), quality)).permute(2, 0, 1).float() / 255 * 2 - 1


def check_ranges(config: AugmentConfig) -> None:
    """Refuse ranges an op cannot take (e.g. a CRF above 51), naming the setting; ops that are off (prob 0) are not checked."""
    for field in dataclasses.fields(config):
        r = getattr(config, field.name)
        for end in () if r.prob == 0 else ("min", "max"):
            degrade.OPS[field.name].check(f"train.augment.{field.name}.{end}", getattr(r, end))


def draw(config: AugmentConfig, rng: np.random.Generator) -> degrade.Degradation:
    """The degradation for one copy: each op (in the config's order) with its probability, at a strength uniform in its range."""
    steps = []
    for field in dataclasses.fields(config):
        r = getattr(config, field.name)
        if rng.random() < r.prob:
            op = degrade.OPS[field.name]
            value = float(rng.integers(int(r.min), int(r.max) + 1)) if op.whole else float(rng.uniform(r.min, r.max))
            steps.append(degrade.Step(field.name, op.check(f"train.augment.{field.name}", value)))
    return degrade.Degradation(tuple(steps))
