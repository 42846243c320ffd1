"""The DIRE method's backend: DDIM inversion + reconstruction with the ADM, then the DIRE classifier, eager or compiled."""

from __future__ import annotations

import torch
from torch import nn

from .eager import OnDevice


class DIREBackend(OnDevice):
    """Runs DIRE on `device` in fp32 throughout: the UNet, the DDIM arithmetic and the classifier, whatever the run's
    precision. The DIRE image is 2 × steps UNet calls deep and then quantized to 8 bits: on the tiny config bf16 autocast
    of the UNet moved it by up to 233 levels (a mean of 27) and P by up to 0.06 over 20 steps, beyond the scan tolerance;
    fp16 (the reference's UNet precision on GPUs) is not measured yet. The classifier runs in fp32 as in the reference.

    The Backend interface with DIRE's evidence in place of eps: `noise(x)` gives the quantized DIRE images
    (0..255 as float32, same shape as x), `logits(x, dire)` the classifier's logits. With `compile`, the UNet
    step (called 2 × steps times per batch) and the classifier go through torch.compile at a fixed shape.
    """

    warmup_s: float | None = None

    def __init__(self, dire: nn.Module, classifier: nn.Module, device: torch.device, channels_last: bool = True, compile: bool = False) -> None:
        super().__init__(device, "fp32", channels_last)
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
        """The quantized DIRE images of `x` (0..255, float32), computed in fp32 (even inside a caller's autocast)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.dire(self.layout(x)).float()

    def logits(self, x: torch.Tensor, dire: torch.Tensor) -> torch.Tensor:
        """The DIRE classifier's logits (N,), computed in float32 (`x` itself is not read: DIRE holds the evidence)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.classifier(self.layout(dire)).float()
