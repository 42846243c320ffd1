"""The short distillation fine-tune after compression: the compressed model learns the original's P(fake) (and the labels, if asked)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
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


CHECK_EVERY = 5  # fine-tune steps between two held-out checks
PATIENCE = 2  # checks in a row without improvement that stop the fine-tune
FEW = 32  # fewer held-out frames than this: the fidelity figures are noisy (one-line warning)


@dataclass(frozen=True)
class Fidelity:
    """|ΔP| of a model against the original on `n` held-out frames: its mean and its max."""

    n: int
    mean: float
    max: float

    @classmethod
    def between(cls, before: Sequence[float], after: Sequence[float]) -> "Fidelity":
        """The spread of |ΔP| over paired scores."""
        gaps = [abs(a - b) for a, b in zip(before, after)]
        return cls(len(gaps), sum(gaps) / len(gaps), max(gaps))


@dataclass
class Tuned:
    """What the fine-tune did: every step's loss, each held-out check as (step, mean |ΔP|), and the step whose state was kept."""

    losses: list[float] = field(default_factory=list)
    checks: list[tuple[int, float]] = field(default_factory=list)
    kept: int = 0


def distill(
    student: nn.Module,
    reference: nn.Module,
    samples: Samples,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    held_out: Samples,
    after_step: Callable[[int, float], None] | None = None,
    inputs: Inputs = student_inputs,
    labels: bool = False,
    check_every: int = CHECK_EVERY,
) -> Tuned:
    """Up to `steps` Adam steps of BCE(logit, P of the reference), plus BCE(logit, label) with `labels`; BatchNorm stays frozen.

    Before the first step and every `check_every` steps the student's mean |ΔP| against the reference on `held_out` is
    measured (with `labels`: the held-out loss); the student ends in the best state seen, step 0 (no fine-tune)
    included, so the fine-tune never leaves it further from the original than it started. It stops after `PATIENCE`
    checks in a row without improvement. `after_step(step, loss)` runs after each step (magnitude pruning re-applies its
    masks there); `inputs` picks the model's arguments from a batch.
    """
    tuned = Tuned()
    if steps == 0:
        return tuned
    known, targets = scores(reference, held_out, batch, inputs)

    def measure() -> float:
        _, probs = scores(student, held_out, batch, inputs)
        if not labels:
            return Fidelity.between(targets, probs).mean
        p = torch.tensor(probs).clamp(1e-7, 1 - 1e-7)
        return float(F.binary_cross_entropy(p, torch.tensor(targets, dtype=p.dtype)) + F.binary_cross_entropy(p, torch.tensor(known, dtype=p.dtype)))

    best, best_state, stale = measure(), copy.deepcopy(student.state_dict()), 0
    tuned.checks.append((0, best))
    student.eval()
    reference.eval()
    optimiser = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    loader = DataLoader(samples, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed), drop_last=len(samples) > batch)
    losses = tuned.losses
    while len(losses) < steps and stale < PATIENCE:
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
            if len(losses) % check_every == 0 or len(losses) == steps:
                now = measure()
                tuned.checks.append((len(losses), now))
                if now < best:
                    best, best_state, stale, tuned.kept = now, copy.deepcopy(student.state_dict()), 0, len(losses)
                else:
                    stale += 1
            if len(losses) == steps or stale >= PATIENCE:
                break
    student.load_state_dict(best_state)
    return tuned


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
