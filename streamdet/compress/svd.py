"""Low-rank factorisation: Linear and 1×1 convolutions by SVD of the weight matrix, k×k convolutions by spatial SVD
(a k×1 then a 1×k convolution through `rank` channels), ranks by retained energy or by a FLOP target."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..models.compressed import get_module, low_rank, set_module
from .measure import layer_macs


@dataclass
class _Layer:
    """One candidate layer: the matrix whose SVD factorises it, and the MACs of the full and the factorised forms."""

    name: str
    matrix: torch.Tensor
    singular: torch.Tensor
    macs: int
    macs_per_rank: float


def _matrix(layer: nn.Module) -> torch.Tensor:
    """Linear/1×1: W as (out, in). k×k: W[o, i, h, w] as rows (o, w) × columns (i, h), which the k×1/1×k pair spans."""
    w = layer.weight.detach()
    if isinstance(layer, nn.Linear) or w.shape[2:] == (1, 1):
        return w.reshape(w.shape[0], w.shape[1])
    out, inp, kh, kw = w.shape
    return w.permute(0, 3, 1, 2).reshape(out * kw, inp * kh)


def _candidates(student: nn.Module, image_size: int) -> list[_Layer]:
    macs = layer_macs(student, image_size)
    found = []
    for name, layer in student.named_modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)) or (isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.dilation != (1, 1))):
            continue
        matrix = _matrix(layer)
        if isinstance(layer, nn.Linear) or layer.kernel_size == (1, 1):
            per_rank = macs[name] * (matrix.shape[0] + matrix.shape[1]) / (matrix.shape[0] * matrix.shape[1])
        else:  # k×1 at the input width (stride only along height), then 1×k
            (kh, kw), sw = layer.kernel_size, layer.stride[1]
            pixels = macs[name] / (layer.out_channels * layer.in_channels * kh * kw)
            per_rank = pixels * (layer.in_channels * kh * sw + layer.out_channels * kw)
        found.append(_Layer(name, matrix, torch.linalg.svdvals(matrix), macs[name], per_rank))
    return found


def _rank(layer: _Layer, energy: float) -> int | None:
    """The smallest rank keeping `energy` of Σσ², or None where the pair would cost as much as the layer."""
    share = torch.cumsum(layer.singular**2, 0) / (layer.singular**2).sum()
    rank = int(torch.searchsorted(share, torch.tensor(energy, dtype=share.dtype)).item()) + 1
    rank = min(rank, len(layer.singular))
    return rank if rank * layer.macs_per_rank < layer.macs else None


def plan(student: nn.Module, image_size: int, energy: float | None = None, flops: float | None = None) -> tuple[dict[str, int], float]:
    """Ranks per layer, and the energy kept: by `energy` directly, or the largest energy whose MACs are ≤ `flops` of now."""
    if (energy is None) == (flops is None):
        raise ConfigError("svd: give exactly one of --energy (share of Σσ² kept) and --flops (share of FLOPs kept)")
    for value, what in ((energy, "energy"), (flops, "flops")):
        if value is not None and not 0.0 < value <= 1.0:
            raise ConfigError(f"svd {what} {value}: must be in (0, 1]")
    layers = _candidates(student, image_size)
    total = sum(layer_macs(student, image_size).values())

    def ranks_at(e: float) -> tuple[dict[str, int], float]:
        ranks = {layer.name: r for layer in layers if (r := _rank(layer, e)) is not None}
        saved = sum(layer.macs - ranks[layer.name] * layer.macs_per_rank for layer in layers if layer.name in ranks)
        return ranks, (total - saved) / total

    if energy is not None:
        return ranks_at(energy)[0], energy
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if ranks_at(mid)[1] <= flops:
            lo = mid
        else:
            hi = mid
    if ranks_at(lo)[1] > flops:
        floor = ranks_at(0.0)[1]
        shown = math.ceil(floor * 10_000) / 100  # rounded up: the figure printed is never below the share that remains
        raise ConfigError(f"svd --flops {flops}: not reachable by factorisation alone (even at the lowest ranks {shown:g}% of the FLOPs remain, "
                          f"above the {100 * flops:g}% asked); prune first")
    return ranks_at(lo)[0], lo


def factorise(student: nn.Module, ranks: dict[str, int]) -> None:
    """Replace each planned layer by its low-rank pair, initialised from the truncated SVD (exact at full rank)."""
    for name, rank in ranks.items():
        layer = get_module(student, name)
        u, s, vh = torch.linalg.svd(_matrix(layer), full_matrices=False)
        root = s[:rank].sqrt()
        left, right = u[:, :rank] * root, root[:, None] * vh[:rank]
        pair = low_rank(layer, rank)
        with torch.no_grad():
            if isinstance(layer, nn.Linear) or layer.kernel_size == (1, 1):
                pair[0].weight.copy_(right.reshape(pair[0].weight.shape))
                pair[1].weight.copy_(left.reshape(pair[1].weight.shape))
            else:
                out, inp, kh, kw = layer.weight.shape
                pair[0].weight.copy_(right.reshape(rank, inp, kh, 1))
                pair[1].weight.copy_(left.reshape(out, kw, rank).permute(0, 2, 1).unsqueeze(2))
            if layer.bias is not None:
                pair[1].bias.copy_(layer.bias)
        set_module(student, name, pair)


def summary(ranks: dict[str, int], energy: float, flops: float | None) -> dict[str, Any]:
    """What the factorisation did, for the checkpoint's metadata."""
    return {"decomposition": "SVD (Linear, 1×1) and spatial SVD k×1 + 1×k (k×k)", "energy": round(energy, 6), "flops_target": flops, "layers": len(ranks)}
