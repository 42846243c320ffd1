"""Training checkpoints in DistilDIRE's format, readable with `torch.load(weights_only=True)` and by `scan --student`.

`{"model": student state_dict (student_backbone.*, student_head.2.*), "optimizer", "scheduler", "scaler",
"epoch" (completed epochs), "step", "best_ap", "rng" (tensors), "config" (plain types), "metrics"}`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..files import atomic_path
from ..weights import load_checkpoint
from .writers import save_torch

LAST = "last.pth"
BEST = "best.pth"
REQUIRED = ("model", "optimizer", "scheduler", "epoch", "step", "rng", "config")


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The torch random generator states of this process, as tensors."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Put back the generator states saved by `rng_state`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save(out: Path, checkpoint: dict[str, Any], best: bool) -> None:
    """Write `last.pth` atomically, and copy it to `best.pth` (atomically too) when `best`."""
    save_torch(out / LAST, checkpoint)
    if best:
        with atomic_path(out / BEST) as tmp:
            shutil.copyfile(out / LAST, tmp)


def load(path: Path) -> dict[str, Any]:
    """A training checkpoint, as data only; one-line error if it is not one."""
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED):
        missing = [key for key in REQUIRED if not isinstance(checkpoint, dict) or key not in checkpoint]
        raise WeightsError(f"{path}: not a streamdet training checkpoint (missing {', '.join(missing)}); --resume needs the last.pth of a run")
    return checkpoint
