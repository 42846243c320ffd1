"""The DIRE method's backend: DDIM inversion + reconstruction with the ADM, then the DIRE classifier, eager or compiled."""

from __future__ import annotations

import torch
from torch import nn

from .eager import OnDevice


class DIREBackend(OnDevice):
    """Runs DIRE on `device`: the UNet at `precision` (autocast), the DDIM arithmetic and the classifier in fp32, as the
    DIRE reference runs its classifier.

    The Backend interface with DIRE's evidence in place of eps: `noise(x)` gives the quantized DIRE images
    (0..255 as float32, same shape as x), `logits(x, dire)` the classifier's logits. With `compile`, the UNet
    step (called 2 × steps times per batch) and the classifier go through torch.compile at a fixed shape.
    """

    warmup_s: float | None = None

    def __init__(self, dire: nn.Module, classifier: nn.Module, device: torch.device, precision: str, channels_last: bool = True, compile: bool = False) -> None:
        super().__init__(device, precision, channels_last)
        self.name = "compile" if compile else "torch"
        self.dire = dire.to(device).eval().requires_grad_(False)
        self.classifier = classifier.to(device).eval().requires_grad_(False)
        if self.channels_last:
            self.dire.unet.to(memory_format=torch.channels_last)
            self.classifier.to(memory_format=torch.channels_last)
        if compile:
            self.dire.predict = torch.compile(self.dire.predict, dynamic=False)
            self.classifier = torch.compile(self.classifier, dynamic=False)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """The quantized DIRE images of `x` (0..255, float32)."""
        with self.autocast():
            return self.dire(self.layout(x)).float()

    def logits(self, x: torch.Tensor, dire: torch.Tensor) -> torch.Tensor:
        """The DIRE classifier's logits (N,), computed in float32 (`x` itself is not read: DIRE holds the evidence)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.classifier(self.layout(dire)).float()
