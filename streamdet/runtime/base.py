"""The Backend interface: preprocessed frames in, eps and student logits out."""

from __future__ import annotations

from typing import Protocol

import torch

BACKENDS = ("torch", "compile", "onnxruntime", "tensorrt")


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
