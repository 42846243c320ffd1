"""Where training code runs: the device, mixed precision, and the torchrun process group (DDP)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..device import pick_device, pick_precision


@dataclass(frozen=True)
class Runtime:
    """This process's place in a (possibly one-process) run: rank, world size, device, precision."""

    rank: int
    world: int
    device: torch.device
    precision: str

    @property
    def main(self) -> bool:
        """True in the process that writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world > 1

    def barrier(self) -> None:
        """Wait for every process (no-op when alone)."""
        if self.distributed:
            dist.barrier()

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm statistics) to every process, so all evaluate the checkpointed model."""
        if self.distributed:
            for buffer in module.buffers():
                dist.broadcast(buffer, 0)

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order (just `[obj]` when alone)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def start(device: str, precision: str) -> Runtime:
    """Join torchrun's process group when launched by it (NCCL on GPUs, gloo on CPU) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device in ("auto", "cuda") and torch.cuda.is_available():
            device = f"cuda:{local}"
        chosen = pick_device(device)
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    else:
        chosen = pick_device(device)
    return Runtime(rank, world, chosen, pick_precision(precision, chosen))


def stop(runtime: Runtime) -> None:
    """Leave the process group, if this run joined one."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
