"""What a student costs: parameters, multiply-accumulates per layer, FLOPs, bit-operations (BOPs)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.compressed import QuantConv2d, QuantLinear

FULL_BITS = 32


@dataclass(frozen=True)
class Cost:
    """Per-frame cost of a student at one input size."""

    params: int
    nonzero: int
    gflops: float
    gbops: float


def layer_macs(model: nn.Module, image_size: int, inputs: int = 2) -> dict[str, int]:
    """Multiply-accumulates of every Conv2d and Linear that runs for one input of `inputs` 3×S×S tensors (a
    student reads two, frame and eps; the lite detector one), measured with forward hooks."""
    macs: dict[str, int] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
                k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
                macs[name] = out.numel() * k
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
                macs[name] = out.numel() * m.in_features
            hooks.append(m.register_forward_hook(linear_hook))
    x = torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
    try:
        with torch.no_grad():
            model(*[x] * inputs)
    finally:
        for h in hooks:
            h.remove()
    return macs


def cost(model: nn.Module, image_size: int, inputs: int = 2) -> Cost:
    """Parameters (all and nonzero), GFLOPs (2 per MAC) and GBOPs (MACs × weight bits × activation bits; 32×32 unquantized)."""
    macs = layer_macs(model, image_size, inputs)
    bops = 0
    for name, n in macs.items():
        m = model.get_submodule(name)
        if isinstance(m, (QuantConv2d, QuantLinear)):
            bops += n * m.w_quant.bits * m.a_quant.bits
        else:
            bops += n * FULL_BITS * FULL_BITS
    params = [p for n, p in model.named_parameters() if not n.endswith(".step")]
    return Cost(
        params=sum(p.numel() for p in params),
        nonzero=sum(int((p != 0).sum()) for p in params),
        gflops=2 * sum(macs.values()) / 1e9,
        gbops=bops / 1e9,
    )
