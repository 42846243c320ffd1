"""Where `prepare` stores each image's eps (float16 .npy) and DIRE (8-bit PNG), and what it was made with."""

from __future__ import annotations

import json
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
        path = self.dire_path(item)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{path}: cannot read DIRE cache; run `streamdet prepare` again")
        rgb = torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
        return rgb.float() / 255 * 2 - 1

    def read_meta(self) -> dict[str, Any] | None:
        """What the caches were made with, or None before the first `prepare`."""
        path = self.dir / META
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise DatasetError(f"{path}: not a prepare record ({exc})") from None

    def claim(self, meta: dict[str, Any]) -> None:
        """Record `meta` for a new cache, or check that an existing cache was made with the same settings."""
        old = self.read_meta()
        if old is None:
            write_text(self.dir / META, json.dumps(meta, indent=2) + "\n")
            return
        for key in meta:
            if old.get(key) != meta[key]:
                raise DatasetError(
                    f"{self.dir}: cache was made with another {key} ({old.get(key)!r}, now {meta[key]!r}); "
                    "pass another --cache or delete this one"
                )

    def check_size(self, image_size: int) -> None:
        """Refuse caches made for another image size than the one the model reads."""
        meta = self.read_meta()
        if meta is not None and meta.get("image_size") != image_size:
            raise DatasetError(f"{self.dir}: cache was made at {meta.get('image_size')} px, the config needs {image_size} px")
