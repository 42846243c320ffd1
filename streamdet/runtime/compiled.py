"""The `compile` backend: torch.compile of both models at one padded batch shape (CUDA graphs on GPUs)."""

from __future__ import annotations

import logging
import time
from typing import Callable

import torch
from torch import nn

from .batching import AdaptiveBatch
from .eager import TorchBackend

log = logging.getLogger("streamdet")


class CompileBackend(TorchBackend):
    """torch.compile of both models, warmed up once before any frame is timed.

    Every call is padded to the current batch size, so one compiled shape (and one CUDA graph) serves
    all batches, the last partial one included; when an out-of-memory halves the batch, the next call
    compiles the smaller shape once.
    """

    name = "compile"

    def __init__(
        self,
        noise_model: nn.Module,
        student: nn.Module,
        device: torch.device,
        precision: str,
        batch: AdaptiveBatch,
        image_size: int,
        channels_last: bool = True,
        mode: str | None = None,
        compiler: str = "inductor",
    ) -> None:
        super().__init__(noise_model, student, device, precision, channels_last)
        self.cuda = device.type == "cuda"
        self.mode = mode if mode is not None else ("reduce-overhead" if self.cuda else None)
        self.batch = batch
        self.image_size = image_size
        self.noise_model = torch.compile(self.noise_model, mode=self.mode, backend=compiler, dynamic=False, fullgraph=True)
        self.student = torch.compile(self.student, mode=self.mode, backend=compiler, dynamic=False)

    def _padded(self, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
        n = inputs[0].shape[0]
        pad = max(0, self.batch.size - n)
        # Always new tensors made here, under inference mode: the compiled code is guarded on that kind of tensor.
        inputs = tuple(torch.cat([t, t[-1:].expand(pad, *t.shape[1:])]) for t in inputs)
        if self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        return fn(*inputs)[:n].clone()

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the compiled noise model."""
        return self._padded(super().noise, x)

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits from the compiled student."""
        return self._padded(super().logits, x, eps)

    @torch.inference_mode()
    def warm_up(self) -> float:
        """Compile (and record CUDA graphs) at the current batch size; returns and logs how long it took."""
        size, image = self.batch.size, self.image_size
        x = torch.rand(size, 3, image, image, generator=torch.Generator().manual_seed(0)).to(self.device) * 2 - 1
        started = time.perf_counter()
        for _ in range(3 if self.cuda else 1):
            self.logits(x, self.noise(x))
        if self.cuda:
            torch.cuda.synchronize(self.device)
        self.warmup_s = time.perf_counter() - started
        log.info("torch.compile warm-up (batch %d, mode %s): %.1f s", size, self.mode or "default", self.warmup_s)
        return self.warmup_s
