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


class Cache:
    """The caches of one dataset: `DIR/eps/<image>.npy` and `DIR/dire/<image>.png`, DIR = `--cache` or `DATASET/cache`."""

    def __init__(self, dataset: str | Path, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory else Path(dataset) / "cache"

    def eps_path(self, item: Item) -> Path:
        """The eps file of an image."""
        return self.dir / "eps" / f"{item.path}.npy"

    def dire_path(self, item: Item) -> Path:
        """The DIRE file of an image."""
        return self.dir / "dire" / f"{item.path}.png"

    def save_eps(self, item: Item, eps: torch.Tensor) -> None:
        """Store a 3×S×S eps as float16."""
        write_npy(self.eps_path(item), eps.detach().to("cpu", torch.float16).numpy())

    def save_dire(self, item: Item, dire: torch.Tensor) -> None:
        """Store a quantized 3×S×S uint8 DIRE as an RGB PNG."""
        write_png(self.dire_path(item), np.ascontiguousarray(dire.detach().cpu().permute(1, 2, 0).numpy()))

    def load_eps(self, item: Item) -> torch.Tensor:
        """A stored eps as 3×S×S float32."""
        path = self.eps_path(item)
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read eps cache ({exc}); run `streamdet prepare` again") from None

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
            for kind in ("eps", "dire"):
                shutil.rmtree(self.dir / kind, ignore_errors=True)
        write_text(self.dir / META, json.dumps(meta, indent=2) + "\n")
        return changed

    def check_size(self, image_size: int) -> None:
        """Refuse caches made for another image size than the one the model reads."""
        meta = self.read_meta()
        if meta is not None and meta.get("image_size") != image_size:
            raise DatasetError(f"{self.dir}: cache was made at {meta.get('image_size')} px, the config needs {image_size} px")
