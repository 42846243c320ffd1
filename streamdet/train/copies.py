"""Augmented copies for training: each image degraded as a platform would (`train.augment`), preprocessed, and its eps
computed on the degraded frame, `train.copies` times, cached by `prepare`.

The frames of one source video are degraded together as one clip (re-encoding encodes them as a short video), with
one draw of the augmentation per copy and video, seeded by (seed, copy, video): reruns make the same copies.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Callable, Sequence

import numpy as np
import torch

from ..config import Config
from ..device import autocast
from ..preprocess import preprocess
from .augment import check_ranges, draw
from .cache import Cache
from .dataset import Item

ReadClip = Callable[[Sequence[Item]], list[np.ndarray] | None]


def copies_meta(config: Config) -> dict:
    """What the copies depend on beyond the eps cache's own record: the augmentation settings and the seed."""
    return {"augment": dataclasses.asdict(config.train.augment), "seed": config.train.seed}


def groups(items: Sequence[Item]) -> list[list[Item]]:
    """Items grouped by source video (in frame order), each image without a video on its own; in a stable order."""
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    return [sorted(g, key=lambda i: (i.index if i.index is not None else -1, i.path)) for _, g in sorted(by_group.items())]


def clip_rng(seed: int, copy: int, group: str, stream: int) -> np.random.Generator:
    """A generator for one copy of one clip (crc32 of the group name: the same in every process and run); stream 0 draws the ops, 1 the noise."""
    return np.random.default_rng([seed, copy, zlib.crc32(group.encode()), stream])


def missing(items: Sequence[Item], cache: Cache, copies: int) -> list[tuple[int, list[Item]]]:
    """(copy, clip) pairs that still lack a file."""
    return [(k, g) for g in groups(items) for k in range(1, copies + 1) if not all(all(p.is_file() for p in cache.copy_paths(i, k)) for i in g)]


def make_copies(
    jobs: Sequence[tuple[int, list[Item]]],
    read: ReadClip,
    cache: Cache,
    config: Config,
    noise: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    precision: str,
    done: Callable[[int], None] | None = None,
) -> int:
    """Degrade, preprocess and compute eps for each (copy, clip) job; return the number of images stored."""
    check_ranges(config.train.augment)
    stored = 0
    for copy, clip in jobs:
        frames = read(clip)
        if frames is not None:
            seed, group = config.train.seed, clip[0].group
            degraded = draw(config.train.augment, clip_rng(seed, copy, group, 0)).apply(frames, clip_rng(seed, copy, group, 1))
            for start in range(0, len(clip), config.batch):
                x = preprocess(degraded[start : start + config.batch], config.adm.image_size, device)
                with torch.inference_mode(), autocast(device, precision):
                    eps = noise(x).float()
                for item, xi, ei in zip(clip[start : start + config.batch], x, eps):
                    cache.save_copy(item, copy, xi, ei)
            stored += len(clip)
        if done is not None:
            done(len(clip))
    return stored
