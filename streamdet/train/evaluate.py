"""`streamdet eval`: a student's accuracy and AP on a dataset, per generator and on average (the paper's Table 1),
and per video (frame scores aggregated as `scan` does) for datasets made by `frames`.

Per generator, the fakes of that generator are scored against the reals of the same sub-folder name
when the dataset has one (e.g. real/sdv1 with fake/sdv1), else against all reals.

eval runs the student only, on each image and its cached eps. The student runs in eager PyTorch at the
config's precision, or as a backend (`compile`, `onnxruntime`, `tensorrt`, loaded as `scan` loads it);
unless that is eager fp32, the same images are also scored by the eager fp32 student and the change is
reported (the way to judge an int8 student, which has no elementwise error bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..aggregate import file_score
from ..config import Config, with_overrides
from ..detector import Detector
from ..device import pick_device, pick_precision
from ..errors import BackendError, ConfigError, DatasetError
from ..models.dire import load_dire_classifier
from ..models.student import Student, load_student
from ..weights import resolve
from .cache import Cache
from .dataset import Item, load_items, train_val
from .metrics import Metrics, measure
from .predict import predict
from .comparison import Comparison, compare_scores
from .prepare import DIRE_INPUT, prepare
from .placement import Runtime
from .samples import Samples, with_caches

SPLIT_CHOICES = ("all", "train", "val")

Logits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
class Change:
    """The evaluated student against the eager fp32 student on the same units: both tables, verdict agreement, |ΔP|."""

    reference: Table
    evaluated: Table
    comparison: Comparison

    def metric(self, name: str) -> tuple[float | None, float | None, float | None]:
        """The average over generators of `name` (acc or ap): reference, evaluated, evaluated − reference."""
        ref, new = self.reference.average[name], self.evaluated.average[name]
        return ref, new, None if ref is None or new is None else new - ref

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Avg Acc and AP of both and their change, agreement, max and mean |ΔP|, the reference's table."""
        metrics = {name: dict(zip(("reference", "evaluated", "change"), self.metric(name))) for name in ("acc", "ap")}
        c = self.comparison
        return {**metrics, "agreement": c.agreement, "max_abs_diff": c.max_abs_diff, "mean_abs_diff": c.mean_abs_diff, "reference_table": self.reference.to_dict()}


@dataclass
class EvalReport:
    """Image-level (and, for video datasets, video-level) results of one student on one dataset, and per level the change against the eager fp32 student (none when that was evaluated)."""

    dataset: str
    student: str
    threshold: float
    images: Table
    videos: Table | None
    scores: list[Scored] = field(default_factory=list)
    backend: str = "torch"
    student_precision: str = "fp32"
    changes: dict[str, Change] = field(default_factory=dict)
    method: str = "distildire"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `eval --json`."""
        change = None
        if self.changes:
            change = {"reference": {"backend": "torch", "student_precision": "fp32"}, "images": None, "videos": None, **{level: c.to_dict() for level, c in self.changes.items()}}
        return {
            "dataset": self.dataset,
            "method": self.method,
            "student": self.student,
            "backend": self.backend,
            "student_precision": self.student_precision,
            "threshold": self.threshold,
            "images": self.images.to_dict(),
            "videos": self.videos.to_dict() if self.videos else None,
            "change": change,
            "scores": [vars(s) for s in self.scores],
        }


@dataclass(frozen=True)
class EvalStudent:
    """How eval runs the student: its logits function, where (and under which autocast), what it stands for, and the eager student."""

    logits: Logits
    runtime: Runtime
    backend: str
    precision: str
    eager: Student

    @property
    def plain(self) -> bool:
        """True when this is the eager fp32 student itself (nothing to compare against)."""
        return self.backend == "torch" and self.precision == "fp32"


def student_run(config: Config, student: Path) -> EvalStudent:
    """The student as `scan` would run it: eager under the config's autocast, or a backend's student (its detector
    loaded as `scan` loads it, from the same settings)."""
    backend, student_precision = config.backend, config.student_precision
    if backend != "torch":
        detector = Detector.load(with_overrides(config, {"weights.student": str(student)}))
        # The backend keeps its own precision: no autocast around it.
        return EvalStudent(detector.backend.logits, Runtime(0, 1, detector.device, "fp32"), backend, detector.backend.student_precision, load_student(student).to(detector.device))
    device = pick_device(config.device)
    precision = pick_precision(config.precision, device)
    if student_precision not in (None, precision):
        raise BackendError(f"--student-precision {student_precision} needs --backend onnxruntime or tensorrt (eager PyTorch runs the student at --precision, here {precision})")
    model = load_student(student).to(device)
    return EvalStudent(model, Runtime(0, 1, device, precision), backend, precision, model)


def _units(items: Sequence[Item], scores: Sequence[float], top_fraction: float) -> dict[str, list[Scored]]:
    """The scored units: "images", and "videos" when the items come from videos."""
    units = {"images": [Scored(i.path, i.label, i.generator, s) for i, s in zip(items, scores)]}
    videos = per_video(items, scores, top_fraction)
    if videos:
        units["videos"] = videos
    return units


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


def dire_scores(root: Path, items: Sequence[Item], config: Config, classifier: str | Path, adm: str | Path | None, cache_dir: str | Path | None, progress: Callable[[int, int], None] | None, on_error: Callable[[str], None] | None) -> tuple[list[Item], list[float], Path]:
    """P(fake) by the DIRE classifier for each image's DIRE: the PNG `prepare` cached (made here first where missing, or
    made with other settings), read back as 8 bits. Returns the items that have a DIRE, their scores, the classifier file."""
    cache = Cache(root, cache_dir)
    meta = cache.read_meta() or {}
    if meta.get("dire_steps") != config.train.dire_steps or meta.get("dire_input") != DIRE_INPUT or any(not cache.dire_path(i).is_file() for i in items):
        prepare(root, config, adm=adm, cache_dir=cache_dir, dire=True, progress=progress, on_error=on_error)
    items = [i for i in items if cache.dire_path(i).is_file()]
    if not items:
        raise DatasetError(f"{root}: no image has a DIRE to evaluate")
    path = resolve(classifier)
    device = pick_device(config.device)
    model = load_dire_classifier(path).to(device)
    scores: list[float] = []
    with torch.inference_mode():  # the classifier in fp32, as the DIRE reference runs it
        for start in range(0, len(items), config.batch):
            batch = torch.stack([cache.load_dire_uint8(i) for i in items[start : start + config.batch]]).to(device)
            scores += torch.sigmoid(model(batch).float()).cpu().tolist()
    return items, scores, path


def evaluate(
    dataset: str | Path,
    config: Config,
    cache_dir: str | Path | None = None,
    split: str = "all",
    progress: Callable[[int, int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score every image of `dataset` (or one split) by the run's settings and tabulate the results.

    Everything comes from `config`, as for `scan`: the method (distildire: the student `weights.student` on each
    image's cached eps; dire: the DIRE classifier `weights.dire` on each image's DIRE, in fp32 as its reference runs
    it), the ADM, backend, engines and precisions, the threshold and the top fraction of the per-video score.

    The split is the manifest's, else the one `train` draws with the config's `train.val_fraction` and
    `train.seed`. Images without a cached eps get one first (`prepare` without DIRE, which needs the ADM).
    A backend other than torch loads the ADM too, to check its files; unless the student runs as eager fp32,
    the report has the change against it.
    """
    method, adm = config.method, config.weights.adm
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
    if method == "dire":
        if config.backend != "torch":
            raise BackendError(f"eval --method dire runs the DIRE classifier in eager PyTorch, not on --backend {config.backend}")
        items, scores, classifier = dire_scores(root, items, config, config.weights.dire, adm, cache_dir, progress, on_error)
        units = _units(items, scores, config.top_fraction)
        tables = {level: tabulate(scored, config.threshold) for level, scored in units.items()}
        return EvalReport(str(root), str(classifier), config.threshold, tables["images"], tables.get("videos"), units["images"], student_precision="fp32", method="dire")
    if method != "distildire":
        raise ConfigError(f"--method {method}: eval measures one method at a time (distildire or dire)")
    if any(not cache.eps_path(i).is_file() for i in items):
        prepare(root, config, adm=adm, cache_dir=cache_dir, dire=False, progress=progress, on_error=on_error)
    items = with_caches(items, cache, False, "evaluation")
    student_path = resolve(config.weights.student)
    run = student_run(config, student_path)
    samples = Samples(root, items, cache, config.adm.image_size)

    def score(logits: Logits, runtime: Runtime) -> dict[str, list[Scored]]:
        return _units(items, torch.sigmoid(predict(logits, samples, runtime, config.batch)).tolist(), config.top_fraction)

    units = score(run.logits, run.runtime)
    tables = {level: tabulate(scored, config.threshold) for level, scored in units.items()}
    changes = {}
    if not run.plain:
        reference = score(run.eager, replace(run.runtime, precision="fp32"))
        for level, scored in units.items():
            comparison = compare_scores({u.name: u.score for u in reference[level]}, {u.name: u.score for u in scored}, config.threshold)
            changes[level] = Change(tabulate(reference[level], config.threshold), tables[level], comparison)
    return EvalReport(
        dataset=str(root),
        student=str(student_path),
        threshold=config.threshold,
        images=tables["images"],
        videos=tables.get("videos"),
        scores=units["images"],
        backend=run.backend,
        student_precision=run.precision,
        changes=changes,
    )
