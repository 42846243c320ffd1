"""How far a backend's scores are from eager PyTorch: the stated tolerances, folder scoring, and score comparison for `eval`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("streamdet")

# Largest |backend − eager| allowed, relative to max(1, max |eager|), for eps and for logits. fp32 differs
# only by the order of floating-point sums; fp16 keeps 11 significant bits and bf16 8, accumulated over
# ~100 (ADM) or ~50 (ResNet-50) layers. int8 has no elementwise bound: judge it by accuracy (`compare_scores`).
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}


def score_folder(engine: "Engine", folder: str | Path) -> dict[str, float]:
    """P(fake) per image or video under `folder` (a video's file score) with the engine's backend and settings; unreadable files are skipped with a warning."""
    scores = {}
    for result in engine.scan([folder]):
        if result.status == "ok" and result.score is not None:
            scores[result.path] = result.score
        else:
            log.warning("skipping %s", result.error)
    return scores


@dataclass(frozen=True)
class Comparison:
    """A backend's scores against reference scores of the same files (and against labels, when known)."""

    files: int
    max_abs_diff: float
    mean_abs_diff: float
    agreement: float
    reference_accuracy: float | None = None
    accuracy: float | None = None

    @property
    def accuracy_change(self) -> float | None:
        """accuracy − reference accuracy (negative: the backend loses accuracy)."""
        if self.accuracy is None or self.reference_accuracy is None:
            return None
        return self.accuracy - self.reference_accuracy


def compare_scores(
    reference: Mapping[str, float],
    candidate: Mapping[str, float],
    threshold: float = 0.5,
    labels: Mapping[str, int] | None = None,
) -> Comparison:
    """Compare two score maps over their common files; with labels (1 = fake), also both accuracies at `threshold`."""
    files = sorted(set(reference) & set(candidate))
    if not files:
        raise ValueError("the two score maps have no file in common")
    diffs = [abs(reference[f] - candidate[f]) for f in files]
    agree = sum((reference[f] >= threshold) == (candidate[f] >= threshold) for f in files) / len(files)
    if labels is None:
        return Comparison(len(files), max(diffs), sum(diffs) / len(diffs), agree)
    labelled = [f for f in files if f in labels]
    if not labelled:
        raise ValueError("no labelled file among the scored ones")

    def accuracy(scores: Mapping[str, float]) -> float:
        return sum((scores[f] >= threshold) == bool(labels[f]) for f in labelled) / len(labelled)

    return Comparison(len(files), max(diffs), sum(diffs) / len(diffs), agree, accuracy(reference), accuracy(candidate))
