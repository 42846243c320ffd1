"""Training augmentations, as in DistilDIRE: a horizontal flip shared by image, eps and DIRE; random JPEG on the image.

Every random choice comes from a generator seeded by (seed, epoch, sample index), so a run is
reproducible whatever the number of loader workers or processes, and a resumed run sees the same
augmentations as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


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
    """A 3×S×S RGB image in [-1, 1] through a real JPEG encode/decode (OpenCV's libjpeg) at `quality`."""
    pixels = ((x + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(decoded).permute(2, 0, 1).float() / 255 * 2 - 1
