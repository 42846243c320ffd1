"""Compressed students: the layers they are made of, and how a checkpoint's `compression` block rebuilds them.

The block says what was done, in the order the loader redoes it on a fresh student: `channels` (structured
pruning: each Conv2d/Linear's [out, in] and each BatchNorm2d's [features]), `ranks` (SVD: a layer replaced
by two thinner ones), `bits` (LSQ fake quantization per layer), and how the weights are stored: `sparse`
(nonzeros + bit mask) or packed integer codes for quantized layers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import WeightsError

KEY = "compression"
FORMAT = 1
BITS = (2, 3, 4, 8)  # the bit widths LSQ layers may have (weights and activations)


def get_module(root: nn.Module, name: str) -> nn.Module:
    """The submodule at dotted `name`."""
    return root.get_submodule(name)


def set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    """Put `module` at dotted `name` in place of what was there."""
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


# --- structure: pruned channel counts -----------------------------------------------------------


def channel_sizes(model: nn.Module) -> dict[str, list[int]]:
    """[out, in] of every Conv2d and Linear, [features] of every BatchNorm2d: what structured pruning changes."""
    sizes: dict[str, list[int]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            sizes[name] = [m.out_channels, m.in_channels]
        elif isinstance(m, nn.Linear):
            sizes[name] = [m.out_features, m.in_features]
        elif isinstance(m, nn.BatchNorm2d):
            sizes[name] = [m.num_features]
    return sizes


def resize(model: nn.Module, sizes: Mapping[str, list[int]]) -> None:
    """Replace each listed layer by a fresh one of the given channel counts (values come from the state dict later)."""
    for name, size in sizes.items():
        m = get_module(model, name)
        if isinstance(m, nn.Conv2d):
            new: nn.Module = nn.Conv2d(size[1], size[0], m.kernel_size, m.stride, m.padding, m.dilation, m.groups, m.bias is not None)
        elif isinstance(m, nn.Linear):
            new = nn.Linear(size[1], size[0], m.bias is not None)
        elif isinstance(m, nn.BatchNorm2d):
            new = nn.BatchNorm2d(size[0], m.eps, m.momentum)
        else:
            raise ValueError(f"{name} is a {type(m).__name__}, not a Conv2d, Linear or BatchNorm2d")
        set_module(model, name, new)


# --- structure: low-rank factorisation ------------------------------------------------------------


def low_rank(layer: nn.Module, rank: int) -> nn.Sequential:
    """Two thinner layers in place of `layer`: 1×1 or Linear as (in→rank, rank→out); k×k as (k×1 in→rank, 1×k rank→out).

    The first layer of a pair carries the stride (only its vertical part for k×k), so it runs at the output's height."""
    if isinstance(layer, nn.Linear):
        return nn.Sequential(nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features, layer.bias is not None))
    if not isinstance(layer, nn.Conv2d) or layer.groups != 1 or layer.dilation != (1, 1):
        raise ValueError(f"cannot factorise a {type(layer).__name__} with groups/dilation")
    if layer.kernel_size == (1, 1):
        first = nn.Conv2d(layer.in_channels, rank, 1, layer.stride, layer.padding, bias=False)
        return nn.Sequential(first, nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None))
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    first = nn.Conv2d(layer.in_channels, rank, (kh, 1), (sh, 1), (ph, 0), bias=False)
    second = nn.Conv2d(rank, layer.out_channels, (1, kw), (1, sw), (0, pw), bias=layer.bias is not None)
    return nn.Sequential(first, second)


def factorize(model: nn.Module, ranks: Mapping[str, int]) -> None:
    """Replace each listed layer by its `low_rank` pair."""
    for name, rank in ranks.items():
        set_module(model, name, low_rank(get_module(model, name), int(rank)))


# --- structure: LSQ quantization -----------------------------------------------------------------


def _round_pass(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (straight-through estimator)."""
    return (x.round() - x).detach() + x


def _grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x forward, gradient times `scale` backward (LSQ's step-size gradient scaling)."""
    return (x - x * scale).detach() + x * scale


class LSQ(nn.Module):
    """Learned-step-size quantizer (Esser et al., ICLR 2020): round(clamp(x/s, lo, hi))·s with a trained step s."""

    def __init__(self, bits: int, signed: bool, channels: int = 1) -> None:
        super().__init__()
        self.bits, self.signed = bits, signed
        self.lo, self.hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        self.step = nn.Parameter(torch.ones(channels))

    def _shaped(self, x: torch.Tensor) -> torch.Tensor:
        return self.step.view(-1, *([1] * (x.dim() - 1))) if self.step.numel() > 1 else self.step

    def init_from(self, x: torch.Tensor) -> None:
        """LSQ's initial step, 2·mean|x|/√hi (per output channel for weights)."""
        dims = tuple(range(1, x.dim())) if self.step.numel() > 1 else tuple(range(x.dim()))
        with torch.no_grad():
            self.step.copy_((2 * x.abs().mean(dim=dims) / math.sqrt(self.hi)).clamp_min(1e-8).reshape(self.step.shape))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The integer codes of x, lo..hi."""
        return (x / self._shaped(x)).clamp(self.lo, self.hi).round()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # inference: the exact codes, no straight-through arithmetic (bit-identical to stored codes)
            return self.codes(x) * self._shaped(x)
        scale = 1.0 / math.sqrt(x[0].numel() * self.hi)  # LSQ's g = 1/√(N·Q_P), N: values per step (per sample)
        step = _grad_scale(self._shaped(x), scale)
        return _round_pass((x / step).clamp(self.lo, self.hi)) * step


class QuantConv2d(nn.Conv2d):
    """Conv2d whose weights (per output channel) and input activations (per tensor) are LSQ-quantized."""

    def setup(self, w_bits: int, a_bits: int, a_signed: bool) -> None:
        self.w_quant = LSQ(w_bits, True, self.out_channels)
        self.a_quant = LSQ(a_bits, a_signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.a_quant(x), self.w_quant(self.weight), self.bias)


class QuantLinear(nn.Linear):
    """Linear whose weights (per output feature) and inputs (per tensor) are LSQ-quantized."""

    def setup(self, w_bits: int, a_bits: int, a_signed: bool) -> None:
        self.w_quant = LSQ(w_bits, True, self.out_features)
        self.a_quant = LSQ(a_bits, a_signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self.a_quant(x), self.w_quant(self.weight), self.bias)


def quantized(layer: nn.Module, w_bits: int, a_bits: int, a_signed: bool) -> nn.Module:
    """A quantized copy of a Conv2d or Linear (same weights)."""
    if isinstance(layer, nn.Conv2d):
        q: nn.Module = QuantConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.groups, layer.bias is not None)
    elif isinstance(layer, nn.Linear):
        q = QuantLinear(layer.in_features, layer.out_features, layer.bias is not None)
    else:
        raise ValueError(f"cannot quantize a {type(layer).__name__}")
    q.load_state_dict(layer.state_dict())
    q.setup(w_bits, a_bits, a_signed)
    return q.to(layer.weight.device)


def quantize_layers(model: nn.Module, bits: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace each listed layer by its quantized version: `{name: {"w": bits, "a": bits, "a_signed": bool}}`."""
    for name, b in bits.items():
        set_module(model, name, quantized(get_module(model, name), int(b["w"]), int(b["a"]), bool(b["a_signed"])))


# --- storage: packed integer codes and sparse weights ------------------------------------------


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integers < 2**bits, `bits` each, packed into uint8 (the stored form of low-bit weights)."""
    v = values.flatten().to(torch.int64).numpy().astype(np.uint8)
    planes = np.unpackbits(v[:, None], axis=1, bitorder="little")[:, :bits]
    return torch.from_numpy(np.packbits(planes.flatten(), bitorder="little"))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of `pack_bits`: `count` unsigned integers."""
    planes = np.unpackbits(packed.numpy(), bitorder="little")[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits)).astype(np.int64)
    return torch.from_numpy(planes.astype(np.int64) @ weights)


def encode_state(model: nn.Module, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict as stored: quantized weights as packed codes, sparse weights as nonzeros + packed mask."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for name in meta.get("bits", {}):
        layer = get_module(model, name)
        w = state.pop(f"{name}.weight")
        codes = layer.w_quant.codes(w).to(torch.int64) - layer.w_quant.lo
        state[f"{name}.weight_codes"] = pack_bits(codes, layer.w_quant.bits)
    for name in meta.get("sparse", []):
        w = state.pop(f"{name}.weight")
        mask = w != 0
        state[f"{name}.weight_values"] = w[mask].clone()
        state[f"{name}.weight_mask"] = torch.from_numpy(np.packbits(mask.flatten().numpy()))
    return state


def _refuse(path: str | Path, name: str, problem: str) -> WeightsError:
    return WeightsError(f"{path}: compression block does not match the stored tensors: layer {name}: {problem}")


def _check_quantized(model: nn.Module, state: Mapping[str, torch.Tensor], name: str, spec: Any, path: str | Path) -> None:
    """One LSQ layer of the block against its tensors: codes exactly as long as its weight needs at its bits, one positive step per output channel."""
    codes, step, a_step = (state.get(f"{name}.{k}") for k in ("weight_codes", "w_quant.step", "a_quant.step"))
    if codes is None or step is None or a_step is None:
        raise _refuse(path, name, "listed under bits, but its weight_codes, w_quant.step or a_quant.step tensor is missing")
    shape = get_module(model, name).weight.shape
    needed = -(-math.prod(shape) * int(spec["w"]) // 8)
    if codes.dtype != torch.uint8 or codes.dim() != 1 or codes.numel() != needed:
        raise _refuse(path, name, f"{codes.numel()} bytes of {codes.dtype} codes, but {math.prod(shape)} weights at {spec['w']} bits need exactly {needed} bytes of uint8")
    if tuple(step.shape) != (shape[0],) or a_step.numel() != 1:
        raise _refuse(path, name, f"step sizes of shape {tuple(step.shape)} and {tuple(a_step.shape)}, but {shape[0]} output channels need ({shape[0]},) and (1,)")
    if not (bool(torch.isfinite(step).all()) and bool((step > 0).all()) and bool(torch.isfinite(a_step).all()) and bool((a_step > 0).all())):
        raise _refuse(path, name, "a step size is not a positive finite number")


def _check_sparse(model: nn.Module, state: Mapping[str, torch.Tensor], name: str, path: str | Path) -> None:
    """One magnitude-pruned layer against its tensors: a mask exactly as long as the weight, as many values as it has set bits."""
    mask, values = state.get(f"{name}.weight_mask"), state.get(f"{name}.weight_values")
    if mask is None or values is None:
        raise _refuse(path, name, "listed under sparse, but its weight_mask or weight_values tensor is missing")
    count = math.prod(get_module(model, name).weight.shape)
    if mask.dtype != torch.uint8 or mask.dim() != 1 or mask.numel() != -(-count // 8):
        raise _refuse(path, name, f"a mask of {mask.numel()} bytes of {mask.dtype}, but {count} weights need exactly {-(-count // 8)} bytes of uint8")
    bits = np.unpackbits(mask.numpy())
    if bits[count:].any():
        raise _refuse(path, name, f"the mask sets bits past its {count} weights")
    if values.dim() != 1 or values.numel() != int(bits.sum()):
        raise _refuse(path, name, f"{values.numel()} stored values, but the mask keeps {int(bits.sum())}")


def check_state(model: nn.Module, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path: str | Path) -> None:
    """Refuse, naming the file and the layer, any disagreement between the block and the stored tensors (a tampered or mixed-up file)."""
    bits, sparse = meta.get("bits", {}), meta.get("sparse", [])
    if not isinstance(bits, Mapping) or not isinstance(sparse, list):
        raise WeightsError(f"{path}: compression block does not match the stored tensors: bits must be a mapping and sparse a list")
    for name, spec in bits.items():
        _check_quantized(model, state, name, spec, path)
    for name in sparse:
        _check_sparse(model, state, name, path)
    for key in state:
        layer, _, kind = key.rpartition(".")
        if (kind == "weight_codes" and layer not in bits) or (kind in ("weight_mask", "weight_values") and layer not in sparse):
            raise _refuse(path, layer, f"has stored {kind}, but the block does not list it under {'bits' if kind == 'weight_codes' else 'sparse'}")


def decode_state(model: nn.Module, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], path: str | Path) -> dict[str, torch.Tensor]:
    """The plain state dict for `model` (already rebuilt) from the stored form, after `check_state`."""
    check_state(model, state, meta, path)
    out = dict(state)
    try:
        for name in meta.get("bits", {}):
            layer = get_module(model, name)
            q, shape = layer.w_quant, layer.weight.shape
            codes = unpack_bits(out.pop(f"{name}.weight_codes"), q.bits, math.prod(shape)) + q.lo
            step = out[f"{name}.w_quant.step"].view(-1, *([1] * (len(shape) - 1)))
            out[f"{name}.weight"] = codes.reshape(shape).float() * step
        for name in meta.get("sparse", []):
            shape = get_module(model, name).weight.shape
            mask = torch.from_numpy(np.unpackbits(out.pop(f"{name}.weight_mask").numpy())[: math.prod(shape)].astype(bool)).reshape(shape)
            dense = torch.zeros(shape)
            dense[mask] = out.pop(f"{name}.weight_values")
            out[f"{name}.weight"] = dense
    except (KeyError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: compressed weights do not fit their compression block ({type(exc).__name__}: {exc})") from None
    return out


def _check_spec(path: str | Path, meta: Mapping[str, Any]) -> None:
    """The block's own values, layer by layer: channel counts and ranks positive integers, bit widths known."""
    for part in ("channels", "ranks", "bits"):
        if not isinstance(meta.get(part, {}), Mapping):
            raise WeightsError(f"{path}: compression block does not match the stored tensors: {part} must be a mapping of layer names")
    for name, size in meta.get("channels", {}).items():
        if not isinstance(size, list) or not size or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in size):
            raise _refuse(path, name, f"channels {size!r} must be a list of positive integers")
    for name, rank in meta.get("ranks", {}).items():
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise _refuse(path, name, f"rank {rank!r} must be a positive integer")
    for name, spec in meta.get("bits", {}).items():
        if not isinstance(spec, Mapping) or any(spec.get(k) not in BITS or isinstance(spec.get(k), bool) for k in ("w", "a")) or not isinstance(spec.get("a_signed"), bool):
            raise _refuse(path, name, f"bits {dict(spec) if isinstance(spec, Mapping) else spec!r} must give w and a in {', '.join(map(str, BITS))} and a boolean a_signed")


def rebuild(model: nn.Module, meta: Any, path: str | Path) -> None:
    """Redo on a fresh student the structural changes a `compression` block records (pruning, SVD, quantization)."""
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: unknown compression block (expected format {FORMAT}); written by a newer streamdet?")
    _check_spec(path, meta)
    for part, redo in (("channels", resize), ("ranks", factorize), ("bits", quantize_layers)):
        for name, value in meta.get(part, {}).items():
            try:
                redo(model, {name: value})
            except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise _refuse(path, name, f"{part} {value!r} do not fit the model ({type(exc).__name__}: {exc})") from None
