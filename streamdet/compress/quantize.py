"""Quantization-aware training set-up: LSQ quantizers on every Conv2d and Linear, first and last layer at higher precision."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.compressed import BITS, get_module, quantize_layers


def plan(student: nn.Module, bits: int, edge_bits: int, batch: tuple[torch.Tensor, ...]) -> tuple[dict[str, dict[str, Any]], dict[str, torch.Tensor]]:
    """Bits per layer that runs on `batch` (`edge_bits` for the first and last) and, from that one calibration batch, each layer's input and sign."""
    for value, what in ((bits, "--bits"), (edge_bits, "--edge-bits")):
        if value not in BITS:
            raise ConfigError(f"quantize {what} {value}: must be one of {', '.join(map(str, BITS))}")
    names = [n for n, m in student.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    inputs: dict[str, torch.Tensor] = {}
    hooks = [get_module(student, n).register_forward_pre_hook(lambda _m, args, n=n: inputs.__setitem__(n, args[0].detach())) for n in names]
    try:
        with torch.no_grad():
            student(*batch)
    finally:
        for h in hooks:
            h.remove()
    names = [n for n in names if n in inputs]  # the layers inference runs (not the lite detector's distillation adapter)
    edges = {names[0], names[-1]}
    layout = {n: {"w": edge_bits if n in edges else bits, "a": edge_bits if n in edges else bits, "a_signed": bool(inputs[n].min() < 0)} for n in names}
    return layout, inputs


def quantize(student: nn.Module, layout: dict[str, dict[str, Any]], inputs: dict[str, torch.Tensor]) -> None:
    """Put the quantizers in and initialise their steps LSQ's way from the weights and the calibration inputs."""
    quantize_layers(student, layout)
    for name in layout:
        layer = get_module(student, name)
        layer.w_quant.init_from(layer.weight)
        layer.a_quant.init_from(inputs[name])
