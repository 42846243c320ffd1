"""Run a model over a batch in chunks, halving the chunk on out-of-device-memory instead of failing."""

from __future__ import annotations

import logging
from typing import Callable

import torch

from ..errors import StreamdetError

log = logging.getLogger("streamdet")

# How runtimes other than torch word an allocation failure (ONNX Runtime's CUDA provider, TensorRT, cuDNN).
_OOM_WORDS = ("out of memory", "failed to allocate memory", "cudaerrormemoryallocation", "cuda_error_out_of_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and for the allocation failures ONNX Runtime and TensorRT raise as plain errors."""
    return isinstance(exc, torch.OutOfMemoryError) or any(word in str(exc).lower() for word in _OOM_WORDS)


class AdaptiveBatch:
    """The largest chunk size that has worked so far; it only shrinks, by half, once per size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def run(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """`fn` applied to `x` in chunks of at most `self.size` rows, concatenated."""
        outputs = []
        start = 0
        while start < len(x):
            size = self.size
            try:
                outputs.append(fn(x[start : start + size]))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if size == 1:
                    raise StreamdetError("CUDA out of memory at batch size 1: the model does not fit this GPU") from None
                self.size = size // 2
                log.warning("CUDA out of memory at batch size %d; continuing with batch size %d", size, self.size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += size
        return torch.cat(outputs) if outputs else x.new_empty(0)
