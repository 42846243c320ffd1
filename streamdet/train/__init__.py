"""Training your own detector: frame datasets (`frames`), eps/DIRE caches (`prepare`), distillation (`train`), `eval`."""

from __future__ import annotations

from .dataset import Item, load_items, split_items, train_val
from .evaluate import EvalReport, evaluate
from .frames import FramesReport, build_frames
from .metrics import accuracy, average_precision
from .prepare import PrepareReport, prepare
from .trainer import TrainResult, train

__all__ = [
    "EvalReport",
    "FramesReport",
    "Item",
    "PrepareReport",
    "TrainResult",
    "accuracy",
    "average_precision",
    "build_frames",
    "evaluate",
    "load_items",
    "prepare",
    "split_items",
    "train",
    "train_val",
]
