"""The short distillation fine-tune after compression: the compressed model learns the original's P(fake) (and the labels, if asked)."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import StreamdetError

Samples = Dataset | Sequence[Mapping[str, Any]]  # a student's `train.samples.Samples`, a lite detector's list of dicts
Inputs = Callable[[Mapping[str, Any]], tuple[torch.Tensor, ...]]


def student_inputs(sample: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    """What a student reads from a batch: the frames and their eps."""
    return sample["x"], sample["eps"]


def distill(
    student: nn.Module,
    reference: nn.Module,
    samples: Samples,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    after_step: Callable[[int, float], None] | None = None,
    inputs: Inputs = student_inputs,
    labels: bool = False,
) -> list[float]:
    """`steps` Adam steps of BCE(logit, P of the reference), plus BCE(logit, label) with `labels`; BatchNorm statistics stay frozen.

    `after_step(step, loss)` runs after each step (magnitude pruning re-applies its masks there); `inputs`
    picks the model's arguments from a batch.
    """
    if steps == 0:
        return []
    student.eval()
    reference.eval()
    optimiser = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    loader = DataLoader(samples, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed), drop_last=len(samples) > batch)
    losses: list[float] = []
    while len(losses) < steps:
        for sample in loader:
            args, y = inputs(sample), sample["label"].float()
            with torch.no_grad():
                target = torch.sigmoid(reference(*args))
            logits = student(*args)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            if labels:
                loss = F.binary_cross_entropy_with_logits(logits, y) + loss
            if not math.isfinite(loss.item()):
                raise StreamdetError(f"fine-tune step {len(losses) + 1}: loss is {loss.item()} (lower --lr)")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            if after_step is not None:
                after_step(len(losses), losses[-1])
            if len(losses) == steps:
                break
    return losses


@torch.no_grad()
def scores(model: nn.Module, samples: Samples, batch: int, inputs: Inputs = student_inputs) -> tuple[list[int], list[float]]:
    """Labels and P(fake) of every sample, in order."""
    model.eval()
    labels: list[int] = []
    probs: list[float] = []
    for sample in DataLoader(samples, batch_size=batch):
        labels += [int(v) for v in sample["label"]]
        probs += torch.sigmoid(model(*inputs(sample))).tolist()
    if any(not math.isfinite(p) for p in probs):
        raise StreamdetError("compressed student gives non-finite scores; lower --lr or compress less")
    return labels, probs
