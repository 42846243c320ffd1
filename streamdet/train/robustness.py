"""`streamdet eval --degrade`: a student's Acc/AP on a dataset under named degradations, against the clean frames.

Each degradation is applied to the decoded frame before preprocessing and the eps is computed on the degraded
frame, as it would be in use (cached eps are clean, so they are not used). The frames of one source video are
degraded together as one clip, so re-encoding sees a short video, as on a platform.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..engine import Engine
from ..errors import ConfigError, DatasetError
from ..video.degrade import Degradation, parse
from ..video.frame import Frame
from .copies import groups
from .dataset import Item, load_items, read_rgb, train_val
from .evaluate import SPLIT_CHOICES, Scored, Table, per_video, tabulate


@dataclass
class Row:
    """One degradation at one strength: its tables (images, and videos for `frames` datasets), per-image scores, and the SPEC it came from."""

    degradation: Degradation
    series: str
    images: Table
    videos: Table | None
    scores: list[Scored] = field(default_factory=list)

    def change(self, clean: Row, metric: str, level: str = "images") -> float | None:
        """Average `metric` (acc or ap) of this row minus the clean row's, or None when either is undefined."""
        mine, base = getattr(self, level), getattr(clean, level)
        if mine is None or base is None or mine.average[metric] is None or base.average[metric] is None:
            return None
        return mine.average[metric] - base.average[metric]

    def to_dict(self, clean: Row) -> dict[str, Any]:
        """JSON-ready: the degradation, its kind and strength, both tables, and the change of the averages against clean."""
        return {
            "degradation": self.degradation.name,
            "series": self.series,
            "kind": self.degradation.kind,
            "strength": self.degradation.strength,
            "images": self.images.to_dict(),
            "videos": self.videos.to_dict() if self.videos else None,
            "change": {level: {m: self.change(clean, m, level) for m in ("acc", "ap")} for level in ("images", "videos")},
            "scores": [vars(s) for s in self.scores],
        }


@dataclass
class RobustnessReport:
    """The clean row first, then one row per degradation."""

    dataset: str
    student: str
    threshold: float
    rows: list[Row] = field(default_factory=list)

    @property
    def clean(self) -> Row:
        """The row without degradation, the reference of every change."""
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `eval --degrade --json`."""
        return {
            "dataset": self.dataset,
            "student": self.student,
            "threshold": self.threshold,
            "rows": [row.to_dict(self.clean) for row in self.rows],
        }


def degradations(specs: Sequence[str]) -> list[tuple[str, Degradation]]:
    """(SPEC, degradation) for every strength of every SPEC, in the order given; an empty or bad SPEC is a ConfigError."""
    return [(spec, d) for spec in specs for d in parse(spec)]


def _scores(engine: Engine, root: Path, clips: list[list[Item]], degradation: Degradation, seed: int) -> list[float]:
    """P(fake) per item (clip order) with `degradation` applied to each clip, scored by the run's engine as `scan`
    scores a frame; a non-finite score is an error naming the image."""
    scores = []
    for clip in clips:
        images = degradation.apply([read_rgb(root / item.path) for item in clip], np.random.default_rng([seed, zlib.crc32(clip[0].group.encode())]))
        frames = [Frame(str(root / item.path), index, 0.0, image) for index, (item, image) in enumerate(zip(clip, images))]
        values = [frame.score for frame in engine.score_frames(frames)]
        for item, value in zip(clip, values):
            if value is None or not math.isfinite(value):
                raise DatasetError(f"{root / item.path}: score is {value} under {degradation.name} (the model's output is not a number)")
        scores += values
    return scores


def robustness(
    dataset: str | Path,
    config: Config,
    specs: Sequence[str],
    split: str = "all",
    progress: Callable[[int, int], None] | None = None,
) -> RobustnessReport:
    """Score `dataset` (or one split) clean and under every degradation of `specs` with the engine of the run's
    settings (the student `weights.student`, its ADM, backend and crops); per row, the Table 1 metrics."""
    if split not in SPLIT_CHOICES:
        raise DatasetError(f"split must be one of {', '.join(SPLIT_CHOICES)}, not {split!r}")
    if config.method != "distildire" or config.cascade.lite is not None:
        raise ConfigError(f"eval --degrade measures the distildire method without a cascade, not method {config.method}{' with --cascade' if config.cascade.lite else ''}")
    rows_to_run = [("clean", Degradation())] + degradations(specs)
    root = Path(dataset)
    items = load_items(root)
    if split != "all":
        items = dict(zip(("train", "val"), train_val(items, config.train.val_fraction, config.train.seed)))[split]
    if not items:
        raise DatasetError(f"{root}: no images in split {split!r}")
    engine = Engine.load(config)
    clips = groups(items)
    ordered = [item for clip in clips for item in clip]
    report = RobustnessReport(str(root), str(config.weights.student), config.threshold)
    for done, (series, degradation) in enumerate(rows_to_run):
        scores = _scores(engine, root, clips, degradation, config.train.seed)
        images = [Scored(i.path, i.label, i.generator, s) for i, s in zip(ordered, scores)]
        videos = per_video(ordered, scores, config.top_fraction)
        report.rows.append(Row(degradation, series, tabulate(images, config.threshold), tabulate(videos, config.threshold) if videos else None, images))
        if progress is not None:
            progress(done + 1, len(rows_to_run))
    return report
