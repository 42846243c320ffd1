"""The eager PyTorch backend: the models themselves, under autocast (fp16/bf16) and channels-last on GPUs."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..device import autocast


class OnDevice:
    """Where eager PyTorch models run: the device, the precision (autocast) and the memory layout (channels-last on GPUs)."""

    def __init__(self, device: torch.device, precision: str, channels_last: bool = True) -> None:
        self.device = device
        self.precision = self.student_precision = precision
        self.channels_last = channels_last and device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision at the backend's precision; nothing for fp32."""
        return autocast(self.device, self.precision)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """`x` on the device, channels-last where the models are."""
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class TorchBackend(OnDevice):
    """Runs the noise model and the student as they are, on `device`, at `precision`."""

    name = "torch"
    warmup_s: float | None = None

    def __init__(self, noise_model: nn.Module, student: nn.Module, device: torch.device, precision: str, channels_last: bool = True) -> None:
        super().__init__(device, precision, channels_last)
        self.noise_model = noise_model.to(device).eval().requires_grad_(False)
        self.student = student.to(device).eval().requires_grad_(False)
        if self.channels_last:
            self.noise_model.to(memory_format=torch.channels_last)
            self.student.to(memory_format=torch.channels_last)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the noise model; the eps arithmetic itself runs in fp32 (see FirstStepNoise)."""
        with self.autocast():
            return self.noise_model(self.layout(x))

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The student's logits in float32."""
        with self.autocast():
            return self.student(self.layout(x), self.layout(eps)).float()
