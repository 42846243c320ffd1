"""Frame datasets: `real/` and `fake/` folders (one optional level per generator or source), an optional
manifest naming the video each frame came from, and train/val splits that never divide a video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from ..errors import DatasetError
from ..video import iter_frames
from ..video.sources import IMAGE_EXTS
from ..files import write_text

log = logging.getLogger("streamdet")

LABELS = {"real": 0, "fake": 1}
MANIFEST = "manifest.jsonl"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Item:
    """One image: its path relative to the dataset root, label (1 = fake), generator, and source video if any."""

    path: str
    label: int
    generator: str
    video: str | None = None
    index: int | None = None
    time: float | None = None
    split: str | None = None

    @property
    def group(self) -> str:
        """What must stay on one side of a split: the source video, else the image itself."""
        return self.video or self.path


def generator_of(relative: Sequence[str]) -> str:
    """`('fake', 'sdv1', 'x.png')` → 'sdv1'; `('real', 'x.png')` → 'real' (no sub-folder: the label names it)."""
    return relative[1] if len(relative) > 2 else relative[0]


def _walk(root: Path) -> list[Item]:
    """Every image under `root/real` and `root/fake` (recursively, sorted, hidden entries skipped)."""
    items = []
    for label_name, label in LABELS.items():
        top = root / label_name
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTS:
                    continue
                parts = Path(dirpath, name).relative_to(root).parts
                items.append(Item("/".join(parts), label, generator_of(parts)))
    return items


def inside_problem(relative: object) -> str | None:
    """Why a manifest path cannot be used, or None: it must be a relative path that stays inside the dataset.

    The check is on the name itself (no `..`, not absolute), because the caches are written under the same name
    (`cache/eps/<path>.npy`): a name that left the dataset would make `prepare` write outside its caches.
    """
    if not isinstance(relative, str) or not relative:
        return f"path must be a non-empty string, not {relative!r:.60}"
    name = PurePosixPath(relative)
    if "\0" in relative or name.is_absolute() or ".." in name.parts:
        return f"path {relative!r:.80} is not inside the dataset (it must be relative, without '..')"
    return None


def read_manifest(root: Path) -> list[Item]:
    """The items a manifest lists (one JSON object per line), skipping, with a warning, images that are gone."""
    path = root / MANIFEST
    items = []
    fields = {f.name for f in dataclasses.fields(Item)}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the manifest ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            item = Item(**{k: v for k, v in record.items() if k in fields})
        except (ValueError, TypeError, AttributeError) as exc:
            raise DatasetError(f"{path}:{number}: not a manifest record ({exc})") from None
        if problem := inside_problem(item.path):
            raise DatasetError(f"{path}:{number}: {problem}")
        if item.split is not None and item.split not in SPLITS:
            raise DatasetError(f"{path}:{number}: split must be one of {', '.join(SPLITS)}, not {item.split!r}")
        if (root / item.path).is_file():
            items.append(item)
        else:
            log.warning("%s: listed in %s but missing; skipped", root / item.path, path)
    return items


def write_manifest(root: Path, items: Iterable[Item]) -> None:
    """Write the manifest atomically, one JSON object per item."""
    write_text(root / MANIFEST, "".join(json.dumps(dataclasses.asdict(item)) + "\n" for item in items))


def load_items(root: str | Path) -> list[Item]:
    """The images of a dataset: from its manifest when it has one, else from its `real/` and `fake/` folders."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if not any((root / name).is_dir() for name in LABELS):
        raise DatasetError(f"{root}: not a dataset (it needs real/ and fake/ folders of images)")
    items = read_manifest(root) if (root / MANIFEST).is_file() else _walk(root)
    if not items:
        raise DatasetError(f"{root}: no images under real/ or fake/")
    return items


def split_items(items: Sequence[Item], val_fraction: float, seed: int) -> list[Item]:
    """Assign each item to train or val: whole groups (videos) go to one side, per label and generator."""
    strata: dict[tuple[int, str], set[str]] = {}
    for item in items:
        strata.setdefault((item.label, item.generator), set()).add(item.group)
    rng = random.Random(seed)
    val: set[str] = set()
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        n = round(val_fraction * len(groups))
        if val_fraction > 0 and len(groups) > 1:
            n = min(max(n, 1), len(groups) - 1)
        val.update(groups[:n])
    return [dataclasses.replace(item, split="val" if item.group in val else "train") for item in items]


def train_val(items: Sequence[Item], val_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Train and val items: the manifest's split when every item has one, else `split_items`."""
    if not all(item.split for item in items):
        items = split_items(items, val_fraction, seed)
    return [i for i in items if i.split == "train"], [i for i in items if i.split == "val"]


def read_rgb(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB, through the same decoder (and pixel limit) as `scan`."""
    return next(iter_frames(path, max_pixels=max_pixels)).image
