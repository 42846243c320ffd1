"""`streamdet eval`: a student's accuracy and AP on a dataset, per generator and on average (the paper's Table 1),
and per video (frame scores aggregated as `scan` does) for datasets made by `frames`.

Per generator, the fakes of that generator are scored against the reals of the same sub-folder name
when the dataset has one (e.g. real/sdv1 with fake/sdv1), else against all reals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..aggregate import file_score
from ..config import Config
from ..detector import pick_device, pick_precision
from ..errors import DatasetError
from ..models.student import load_student
from ..weights import resolve
from .cache import Cache
from .dataset import Item, load_items, train_val
from .metrics import Metrics, measure
from .predict import predict
from .prepare import prepare
from .runtime import Runtime
from .samples import Samples, with_caches

SPLIT_CHOICES = ("all", "train", "val")


@dataclass
class Scored:
    """One scored unit (an image, or a video): label, generator, P(fake)."""

    name: str
    label: int
    generator: str
    score: float


@dataclass
class Table:
    """Acc/AP per generator, their average, and all units pooled."""

    generators: dict[str, Metrics]
    average: dict[str, float | None]
    pooled: Metrics

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: undefined metrics are None."""
        return {
            "generators": {g: m.to_dict() for g, m in self.generators.items()},
            "average": self.average,
            "all": self.pooled.to_dict(),
        }


@dataclass
class EvalReport:
    """Image-level (and, for video datasets, video-level) results of one student on one dataset."""

    dataset: str
    student: str
    threshold: float
    images: Table
    videos: Table | None
    scores: list[Scored] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `eval --json`."""
        return {
            "dataset": self.dataset,
            "student": self.student,
            "threshold": self.threshold,
            "images": self.images.to_dict(),
            "videos": self.videos.to_dict() if self.videos else None,
            "scores": [vars(s) for s in self.scores],
        }


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else None


def tabulate(units: Sequence[Scored], threshold: float) -> Table:
    """Per-generator metrics (each generator's fakes against the matching reals) and their average."""
    reals = [u for u in units if not u.label]
    real_sources = {u.generator for u in reals}
    generators = {}
    for g in sorted({u.generator for u in units if u.label}):
        group = [u for u in units if u.label and u.generator == g]
        group += [u for u in reals if u.generator == g] if g in real_sources else reals
        generators[g] = measure([u.label for u in group], [u.score for u in group], threshold)
    average = {
        "acc": _mean([m.acc for m in generators.values()]),
        "ap": _mean([m.ap for m in generators.values()]),
    }
    pooled = measure([u.label for u in units], [u.score for u in units], threshold)
    return Table(generators, average, pooled)


def per_video(items: Sequence[Item], scores: Sequence[float], top_fraction: float) -> list[Scored]:
    """One unit per source video: its file score is `scan`'s (mean of the top `top_fraction` frame scores)."""
    videos: dict[str, list[tuple[Item, float]]] = {}
    for item, score in zip(items, scores):
        if item.video:
            videos.setdefault(item.video, []).append((item, score))
    return [
        Scored(video, frames[0][0].label, frames[0][0].generator, file_score([s for _, s in frames], top_fraction))
        for video, frames in sorted(videos.items())
    ]


def evaluate(
    dataset: str | Path,
    config: Config,
    student: str | Path,
    adm: str | Path | None = None,
    cache_dir: str | Path | None = None,
    split: str = "all",
    progress: Callable[[int, int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score every image of `dataset` (or one split) with a student checkpoint and tabulate the results.

    The split is the manifest's, else the one `train` draws with the config's `train.val_fraction` and
    `train.seed`. Images without a cached eps get one first (`prepare` without DIRE, which needs the ADM).
    """
    if split not in SPLIT_CHOICES:
        raise DatasetError(f"split must be one of {', '.join(SPLIT_CHOICES)}, not {split!r}")
    root = Path(dataset)
    cache = Cache(root, cache_dir)
    cache.check_size(config.adm.image_size)
    items = load_items(root)
    if split != "all":
        items = dict(zip(("train", "val"), train_val(items, config.train.val_fraction, config.train.seed)))[split]
    if not items:
        raise DatasetError(f"{root}: no images in split {split!r}")
    if any(not cache.eps_path(i).is_file() for i in items):
        prepare(root, config, adm=adm, cache_dir=cache_dir, dire=False, progress=progress, on_error=on_error)
    items = with_caches(items, cache, False, "evaluation")
    student_path = resolve(student)
    model = load_student(student_path)
    device = pick_device(config.device)
    runtime = Runtime(0, 1, device, pick_precision(config.precision, device))
    logits = predict(model.to(device), Samples(root, items, cache, config.adm.image_size), runtime, config.batch)
    scores = torch.sigmoid(logits).tolist()
    units = [Scored(i.path, i.label, i.generator, s) for i, s in zip(items, scores)]
    videos = per_video(items, scores, config.top_fraction)
    return EvalReport(
        dataset=str(root),
        student=str(student_path),
        threshold=config.threshold,
        images=tabulate(units, config.threshold),
        videos=tabulate(videos, config.threshold) if videos else None,
        scores=units,
    )
