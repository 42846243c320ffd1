"""Pruning: whole channels by a global importance criterion (torch-pruning), or single weights by magnitude."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .measure import cost

TARGETS = ("flops", "params")
ROUNDS = 40  # iterative pruning rounds; each prunes a further share of channels until the target is met


def prune_channels(student: nn.Module, image_size: int, ratio: float, target: str = "flops") -> dict[str, Any]:
    """Remove channels (global group-L2 importance, residual groups kept consistent) until `target` is at most `ratio` of now."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise ConfigError("structured pruning needs torch-pruning: pip install 'streamdet[compress]' (or use --sparsity)") from None
    if target not in TARGETS:
        raise ConfigError(f"prune target {target!r}: must be one of {', '.join(TARGETS)}")
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"prune ratio {ratio}: must be between 0 and 1 (the share of {target} to keep)")
    head = student.student_head[-1]
    example = (torch.zeros(1, 3, image_size, image_size), torch.zeros(1, 3, image_size, image_size))
    before = cost(student, image_size)
    pruner = tp.pruner.MetaPruner(
        student, example, importance=tp.importance.GroupMagnitudeImportance(p=2), global_pruning=True,
        pruning_ratio=0.95, max_pruning_ratio=0.95, iterative_steps=ROUNDS, ignored_layers=[head],
    )
    kept = 1.0
    for _ in range(ROUNDS):
        pruner.step()
        now = cost(student, image_size)
        kept = (now.gflops / before.gflops) if target == "flops" else (now.params / before.params)
        if kept <= ratio:
            break
    return {"criterion": "global group L2 magnitude (torch-pruning MetaPruner)", "target": target, "ratio": ratio, "kept": round(kept, 4)}


def weight_layers(student: nn.Module) -> dict[str, nn.Module]:
    """The Conv2d and Linear layers whose weights magnitude pruning may zero (all but the 1-output head)."""
    head = student.student_head[-1]
    return {n: m for n, m in student.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not head}


def magnitude_masks(student: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Masks keeping the largest-magnitude weights, one global threshold, so that `sparsity` of them are zero."""
    if not 0.0 < sparsity < 1.0:
        raise ConfigError(f"sparsity {sparsity}: must be between 0 and 1 (the share of weights set to zero)")
    layers = weight_layers(student)
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    threshold = torch.kthvalue(magnitudes, max(1, int(sparsity * magnitudes.numel()))).values
    return {n: m.weight.detach().abs() > threshold for n, m in layers.items()}


def apply_masks(student: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked-out weights (after every fine-tune step, so pruned weights stay zero)."""
    with torch.no_grad():
        for name, mask in masks.items():
            student.get_submodule(name).weight.mul_(mask)
