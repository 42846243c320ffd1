"""Accuracy and average precision of P(fake) scores against labels (1 = fake), written out here (no sklearn)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence


def accuracy(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> float:
    """Share of items whose verdict (FAKE when score ≥ threshold, as `scan` decides) matches the label."""
    if not labels:
        return math.nan
    return sum((s >= threshold) == bool(y) for y, s in zip(labels, scores)) / len(labels)


def average_precision(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the precision-recall curve as a step sum: Σ (R_k − R_{k−1}) · P_k over the distinct scores.

    Items with equal scores enter together (one threshold), which is how scikit-learn's
    `average_precision_score` defines it. NaN when there are no positives.
    """
    positives = sum(1 for y in labels if y)
    if positives == 0:
        return math.nan
    ranked = sorted(zip(scores, labels), key=lambda pair: -pair[0])
    ap = 0.0
    tp = fp = 0
    last_recall = 0.0
    for i, (score, label) in enumerate(ranked):
        if label:
            tp += 1
        else:
            fp += 1
        if i + 1 < len(ranked) and ranked[i + 1][0] == score:
            continue
        recall = tp / positives
        ap += (recall - last_recall) * tp / (tp + fp)
        last_recall = recall
    return ap


@dataclass
class Metrics:
    """Acc and AP of one group of items, with the per-class accuracies and counts behind them."""

    acc: float
    ap: float
    real_acc: float
    fake_acc: float
    n_real: int
    n_fake: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (undefined, e.g. AP without fakes) becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def measure(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> Metrics:
    """Acc, AP, real and fake accuracy, and counts for one group."""
    real = [s for y, s in zip(labels, scores) if not y]
    fake = [s for y, s in zip(labels, scores) if y]
    return Metrics(
        acc=accuracy(labels, scores, threshold),
        ap=average_precision(labels, scores),
        real_acc=accuracy([0] * len(real), real, threshold),
        fake_acc=accuracy([1] * len(fake), fake, threshold),
        n_real=len(real),
        n_fake=len(fake),
    )
