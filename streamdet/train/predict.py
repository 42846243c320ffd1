"""Student logits for a set of samples, in batches, optionally sharded over the processes of a DDP run."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Subset

from ..device import autocast
from .placement import Runtime
from .samples import Samples


@torch.inference_mode()
def predict(student: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], samples: Samples, runtime: Runtime, batch: int, workers: int = 0) -> torch.Tensor:
    """Logits (N,) float32 on the CPU in sample order from `student(x, eps)` under the runtime's autocast; each process scores every world-th sample and all see all."""
    shard = Subset(samples, range(runtime.rank, len(samples), runtime.world))
    loader = DataLoader(shard, batch_size=batch, shuffle=False, num_workers=workers, pin_memory=runtime.device.type == "cuda")
    indices, logits = [], []
    for sample in loader:
        with autocast(runtime.device, runtime.precision):
            out = student(sample["x"].to(runtime.device), sample["eps"].to(runtime.device))
        indices.append(sample["index"])
        logits.append(out.float().cpu())
    mine = (torch.cat(indices) if indices else torch.empty(0, dtype=torch.long), torch.cat(logits) if logits else torch.empty(0))
    result = torch.empty(len(samples))
    for idx, values in runtime.gather(mine):
        result[idx] = values
    return result
