"""The Backend interface: preprocessed frames in, eps and student logits out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class BackendSpec:
    """What a backend can do, so callers ask it instead of matching names: the methods it runs, whether it builds
    the eager models from checkpoints (else it runs exported files of fixed input size and batch range), the
    quantized noise precisions it runs, and the devices it runs on."""

    name: str
    methods: tuple[str, ...]
    eager: bool
    quantized: tuple[str, ...]
    devices: tuple[str, ...]

    @property
    def fixed_shapes(self) -> bool:
        """Exported graphs take the input size and batch range they were exported with."""
        return not self.eager


REGISTRY = {
    spec.name: spec
    for spec in (
        BackendSpec("torch", ("distildire", "dire"), eager=True, quantized=(), devices=("cpu", "cuda")),
        BackendSpec("compile", ("distildire", "dire"), eager=True, quantized=(), devices=("cpu", "cuda")),
        BackendSpec("onnxruntime", ("distildire",), eager=False, quantized=("int8",), devices=("cpu", "cuda")),
        BackendSpec("tensorrt", ("distildire",), eager=False, quantized=("int8", "fp8"), devices=("cuda",)),
    )
}
BACKENDS = tuple(REGISTRY)


class Backend(Protocol):
    """Runs the two models on preprocessed frames `x` (N×3×S×S float32 on the backend's device).

    `noise(x)` gives eps (same shape, float32); `logits(x, eps)` gives the student's logits ((N,), float32).
    """

    name: str
    device: torch.device
    precision: str
    student_precision: str
    warmup_s: float | None

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """First-step eps for `x`: same shape, float32, on x's device."""

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Student logits (N,), float32, on x's device."""
