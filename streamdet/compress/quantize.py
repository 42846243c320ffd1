"""Quantization-aware training set-up: LSQ quantizers on every Conv2d and Linear, first and last layer at higher precision."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ConfigError
from ..models.compressed import BITS, LSQ, get_module, quantize_layers
from .finetune import Fidelity


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


GRID = 100  # clipping ratios tried per channel (weights) or tensor (activations) by the MSE-clipped baseline


def mse_step(x: torch.Tensor, quantizer: LSQ) -> torch.Tensor:
    """The step minimising ‖x − Q(x)‖² over clipping ranges α·max|x| (α in (0, 1], `GRID` values), per output channel when the quantizer has one step per channel."""
    rows = x.detach().reshape(quantizer.step.numel(), -1) if quantizer.step.numel() > 1 else x.detach().reshape(1, -1)
    top = (rows.abs().amax(1) if quantizer.signed else rows.clamp_min(0).amax(1)).clamp_min(1e-8)
    best_err, best_step = torch.full_like(top, float("inf")), top / quantizer.hi
    for alpha in torch.linspace(1.0 / GRID, 1.0, GRID):
        step = alpha * top / quantizer.hi
        q = (rows / step[:, None]).round().clamp(quantizer.lo, quantizer.hi) * step[:, None]
        err = (q - rows).square().mean(1)
        better = err < best_err
        best_err, best_step = torch.where(better, err, best_err), torch.where(better, step, best_step)
    return best_step.reshape(quantizer.step.shape)


def init_mse(student: nn.Module, layout: dict[str, dict[str, Any]], inputs: dict[str, torch.Tensor]) -> None:
    """Set every quantizer's step by `mse_step` (plain post-training quantization, the baseline LSQ is compared with)."""
    with torch.no_grad():
        for name in layout:
            layer = get_module(student, name)
            layer.w_quant.step.copy_(mse_step(layer.weight, layer.w_quant))
            layer.a_quant.step.copy_(mse_step(inputs[name], layer.a_quant))


INITS = {"lsq": "LSQ (2·mean|x|/√Q_P)", "mse_ptq": "MSE-clipped post-training quantization"}


def initialise(student: nn.Module, layout: dict[str, dict[str, Any]], inputs: dict[str, torch.Tensor], fidelity: Callable[[nn.Module], Fidelity]) -> dict[str, Any]:
    """Quantize `student` and start it from whichever initial steps, LSQ's or the MSE-clipped ones, `fidelity` finds closer to the original (lower mean |ΔP|)."""
    quantize(student, layout, inputs)
    lsq_state = copy.deepcopy(student.state_dict())
    lsq = fidelity(student)
    init_mse(student, layout, inputs)
    mse = fidelity(student)
    chosen = "lsq" if lsq.mean < mse.mean else "mse_ptq"
    if chosen == "lsq":
        student.load_state_dict(lsq_state)
    return {"lsq": dataclasses.asdict(lsq), "mse_ptq": dataclasses.asdict(mse), "chosen": chosen}
