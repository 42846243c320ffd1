"""Where `prepare` stores each image's eps (float16 .npy) and DIRE (8-bit PNG), and what it was made with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import DatasetError
from ..files import write_text
from .dataset import Item
from .writers import write_npy, write_png

META = "prepare.json"
AUG = "aug"
AUG_META = "augment.json"


class Cache:
    """The caches of one dataset: `DIR/eps/<image>.npy` and `DIR/dire/<image>.png`, DIR = `--cache` or `DATASET/cache`;
    augmented copy k (1…`train.copies`) as `DIR/aug/<k>/x/<image>.npy` (the preprocessed degraded frame) and `DIR/aug/<k>/eps/<image>.npy`."""

    def __init__(self, dataset: str | Path, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory else Path(dataset) / "cache"

    def eps_path(self, item: Item) -> Path:
        """The eps file of an image."""
        return self.dir / "eps" / f"{item.path}.npy"

    def dire_path(self, item: Item) -> Path:
        """The DIRE file of an image."""
        return self.dir / "dire" / f"{item.path}.png"

    def copy_paths(self, item: Item, copy: int) -> tuple[Path, Path]:
        """The x and eps files of augmented copy `copy` (from 1) of an image."""
        folder = self.dir / AUG / str(copy)
        return folder / "x" / f"{item.path}.npy", folder / "eps" / f"{item.path}.npy"

    def has_copies(self, item: Item, copies: int) -> bool:
        """True when copies 1…`copies` of the image are all stored."""
        return all(p.is_file() for k in range(1, copies + 1) for p in self.copy_paths(item, k))

    def save_copy(self, item: Item, copy: int, x: torch.Tensor, eps: torch.Tensor) -> None:
        """Store an augmented copy's preprocessed frame and its eps as float16 (eps last: its presence marks the copy done)."""
        x_path, eps_path = self.copy_paths(item, copy)
        write_npy(x_path, x.detach().to("cpu", torch.float16).numpy())
        write_npy(eps_path, eps.detach().to("cpu", torch.float16).numpy())

    def load_copy(self, item: Item, copy: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented copy's frame and eps as 3×S×S float32."""
        return tuple(self._load_array(path, "augmented copy") for path in self.copy_paths(item, copy))  # type: ignore[return-value]

    def claim_copies(self, meta: dict[str, Any]) -> bool:
        """Record what the augmented copies are made with; True (and the old copies deleted) when that changed."""
        path = self.dir / AUG / AUG_META
        old = json.loads(path.read_text()) if path.is_file() else None
        if old == meta:
            return False
        shutil.rmtree(self.dir / AUG, ignore_errors=True)
        write_text(path, json.dumps(meta, indent=2) + "\n")
        return old is not None

    def read_copies_meta(self) -> dict[str, Any] | None:
        """What the stored augmented copies were made with, or None."""
        path = self.dir / AUG / AUG_META
        return json.loads(path.read_text()) if path.is_file() else None

    def _load_array(self, path: Path, what: str) -> torch.Tensor:
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read {what} cache ({exc}); run `streamdet prepare` again") from None

    def save_eps(self, item: Item, eps: torch.Tensor) -> None:
        """Store a 3×S×S eps as float16."""
        write_npy(self.eps_path(item), eps.detach().to("cpu", torch.float16).numpy())

    def save_dire(self, item: Item, dire: torch.Tensor) -> None:
        """Store a quantized 3×S×S uint8 DIRE as an RGB PNG."""
        write_png(self.dire_path(item), np.ascontiguousarray(dire.detach().cpu().permute(1, 2, 0).numpy()))

    def load_eps(self, item: Item) -> torch.Tensor:
        """A stored eps as 3×S×S float32."""
        return self._load_array(self.eps_path(item), "eps")

    def load_dire(self, item: Item) -> torch.Tensor:
        """A stored DIRE as the teacher reads it: 3×S×S float32, png / 255 · 2 − 1."""
        return self.load_dire_uint8(item).float() / 255 * 2 - 1

    def load_dire_uint8(self, item: Item) -> torch.Tensor:
        """A stored DIRE as its 8-bit RGB pixels, 3×S×S uint8 (what the DIRE classifier reads)."""
        path = self.dire_path(item)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{path}: cannot read DIRE cache; run `streamdet prepare` again")
        return torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)

    def read_meta(self) -> dict[str, Any] | None:
        """What the caches were made with, or None before the first `prepare`."""
        path = self.dir / META
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise DatasetError(f"{path}: not a prepare record ({exc})") from None

    def claim(self, meta: dict[str, Any]) -> list[str]:
        """Record `meta` for this cache and return the settings that differ from the recorded ones.

        eps and DIRE made with other settings (another ADM checkpoint, precision, DIRE step count, …) are stale:
        they are deleted before the new record is written, so that an interrupted run never mixes old and new files.
        """
        old = self.read_meta()
        if old == meta:
            return []
        changed = [] if old is None else sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if changed:
            for kind in ("eps", "dire", AUG):
                shutil.rmtree(self.dir / kind, ignore_errors=True)
        write_text(self.dir / META, json.dumps(meta, indent=2) + "\n")
        return changed

    def check_size(self, image_size: int) -> None:
        """Refuse caches made for another image size than the one the model reads."""
        meta = self.read_meta()
        if meta is not None and meta.get("image_size") != image_size:
            raise DatasetError(f"{self.dir}: cache was made at {meta.get('image_size')} px, the config needs {image_size} px")
