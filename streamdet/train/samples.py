"""The training/validation samples: an image read and preprocessed as at inference, its cached eps and DIRE, its label."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from ..errors import DatasetError
from ..preprocess import preprocess
from .augment import Augment
from .cache import Cache
from .dataset import Item, read_rgb

log = logging.getLogger("streamdet")


class Samples(Dataset):
    """`{"x", "eps", ["dire"], "label", "index"}` per item; `augment` (if given) is seeded by (seed, epoch, index).

    With `copies` K > 0 (training), each epoch draws one of the K + 1 versions of an image (the clean frame or an
    augmented copy cached by `prepare`, with the eps of that version); DIRE stays the clean frame's (see README).
    """

    def __init__(
        self,
        root: str | Path,
        items: Sequence[Item],
        cache: Cache,
        image_size: int,
        dire: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        copies: int = 0,
    ) -> None:
        self.root = Path(root)
        self.items = list(items)
        self.cache = cache
        self.image_size = image_size
        self.dire = dire
        self.augment = augment
        self.seed = seed
        self.copies = copies
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | float | int]:
        item = self.items[index]
        x = preprocess(read_rgb(self.root / item.path), self.image_size)[0]
        maps = [self.cache.load_eps(item)]
        if self.dire:
            maps.append(self.cache.load_dire(item))
        for tensor, path in zip(maps, (self.cache.eps_path(item), self.cache.dire_path(item))):
            if tensor.shape != x.shape:
                raise DatasetError(f"{path}: shape {tuple(tensor.shape)} does not match the image's {tuple(x.shape)}; run `streamdet prepare` again")
        if self.augment is not None:
            rng = self.augment.rng(self.seed, self.epoch, index)
            version = int(rng.integers(0, self.copies + 1)) if self.copies else 0
            if version:
                x, maps[0] = self.cache.load_copy(item, version)
            x, *maps = self.augment(rng, x, *maps)
        sample: dict[str, torch.Tensor | float | int] = {"x": x, "eps": maps[0], "label": float(item.label), "index": index}
        if self.dire:
            sample["dire"] = maps[1]
        return sample


def check_copies(items: Sequence[Item], cache: Cache, copies: int, meta: dict) -> None:
    """Refuse to train with `copies` augmented copies unless every image has them, made with these settings."""
    if not copies:
        return
    lacking = [i for i in items if not cache.has_copies(i, copies)]
    if cache.read_copies_meta() != meta or lacking:
        what = "were made with other train.augment settings or seed" if cache.read_copies_meta() not in (None, meta) else f"are missing for {len(lacking)} of {len(items)} training images"
        raise DatasetError(f"{cache.dir}: the {copies} augmented copies per image (train.copies) {what}; run `streamdet prepare` with this config first")


def with_caches(items: Sequence[Item], cache: Cache, dire: bool, what: str) -> list[Item]:
    """The items whose eps (and DIRE) exist; the others are left out with one warning, or an error if none is left."""
    ready = [i for i in items if cache.eps_path(i).is_file() and (not dire or cache.dire_path(i).is_file())]
    missing = len(items) - len(ready)
    if missing and not ready:
        raise DatasetError(f"{cache.dir}: none of the {len(items)} {what} images has its {'eps and DIRE' if dire else 'eps'} cache; run `streamdet prepare` first")
    if missing:
        ready_set = set(ready)
        first = next(i for i in items if i not in ready_set)
        log.warning("%d of %d %s images have no %s cache (first: %s) and are left out; run `streamdet prepare` to include them", missing, len(items), what, "eps/DIRE" if dire else "eps", first.path)
    return ready
