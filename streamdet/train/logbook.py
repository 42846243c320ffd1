"""Per-epoch metrics: one JSON line per epoch in `metrics.jsonl`, and TensorBoard scalars when tensorboard is installed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"


def read(out: Path) -> list[dict[str, Any]]:
    """The records logged so far in a run folder."""
    path = out / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Logbook:
    """Appends epoch records; on resume, first drops records of epochs after the checkpoint (they will be redone),
    and puts back the checkpoint's own record (`last`) where a kill came between saving it and logging it."""

    def __init__(self, out: Path, keep_through_epoch: int = 0, last: dict[str, Any] | None = None) -> None:
        self.path = out / METRICS
        kept = [r for r in read(out) if r.get("epoch", 0) <= keep_through_epoch]
        if last is not None and last.get("epoch") == keep_through_epoch and not any(r.get("epoch") == keep_through_epoch for r in kept):
            kept.append(last)
        out.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.writer = _tensorboard(out / "tensorboard")

    def write(self, record: dict[str, Any]) -> None:
        """Append one epoch's record (and its numbers to TensorBoard)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "epoch" and not math.isnan(value):
                    self.writer.add_scalar(key, value, record["epoch"])
            self.writer.flush()

    def close(self) -> None:
        """Flush and close TensorBoard's writer."""
        if self.writer is not None:
            self.writer.close()


def _tensorboard(folder: Path) -> Any:
    """A SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
