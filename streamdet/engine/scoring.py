"""Frames → frame scores: the one scoring rule of every entry point (scan, batch actors, watch, the service).

A frame is scored whole (`center`, the published rule) or by regions (`cover`, `faces`); with regions its
score is its best region's. With several methods each method's score is kept beside the primary one's, and
with a cascade each frame records which model scored it. Scoring is split into `send` (queued on the device)
and `InFlight.collect` (read back), so a caller can gather the next frames while the device computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from ..crops import MODES, Box, FaceFinder, best_crop, crop_boxes, frame_spans
from ..errors import ConfigError
from ..preprocess import one_or_each, preprocess_each
from ..results import FrameScore
from ..upload import PendingScores


class FrameLike(Protocol):
    """What scoring reads of a frame: its pixels (uint8 RGB, YUV planes or a device tensor), index and time."""

    image: Any
    index: int
    time: float


@runtime_checkable
class Scorer(Protocol):
    """What scores preprocessed frames: a `Detector` (one or several methods) or a `Cascade` (lite triage first)."""

    device: Any
    batch: Any
    faces: Any
    methods: tuple[str, ...]

    def preprocess(self, frames: Sequence[Any]) -> Any: ...

    def preprocess_crops(self, frames: Sequence[Any], mode: str, layout: Sequence[tuple[str, list[Box]]] | None = None) -> tuple[Any, list]: ...

    def score_async(self, x: Any) -> PendingScores: ...

    def describe(self) -> dict[str, Any]: ...


def check_crops(mode: str) -> str:
    """`mode` if it is a crop mode, else a one-line error."""
    if mode not in MODES:
        raise ConfigError(f"crops {mode!r}: expected one of {', '.join(MODES)}")
    return mode


@dataclass
class InFlight:
    """Frames sent to the device and not yet read back."""

    frames: list[Any]
    pending: PendingScores
    layout: list | None

    def collect(self) -> list[FrameScore]:
        """Each frame's score: its one value, or with crops the highest of its crops' values (non-finite if any is);
        with several methods each method's the same way. A frame is scored by the model of its highest crop."""
        values = self.pending.result()
        by = self.pending.scored_by or [None] * len(values)
        methods = self.pending.by_method()
        out = []
        for frame, (start, kind, boxes) in zip(self.frames, frame_spans(self.layout, len(self.frames))):
            end = start + len(boxes)
            score, top = best_crop(values[start:end])
            several = {m: best_crop(v[start:end])[0] for m, v in methods.items()} if methods else None
            if self.layout is None:
                out.append(FrameScore(frame.index, frame.time, score, scored_by=by[start], scores=several))
                continue
            crops = [{"kind": kind, "box": list(box), "score": value} for box, value in zip(boxes, values[start:end])]
            out.append(FrameScore(frame.index, frame.time, score, scored_by=by[start + top], crop=list(boxes[top]), crops=crops, scores=several))
        return out


def send(scorer: Scorer, frames: Sequence[FrameLike], crops: str, layouts: Sequence[tuple[str, list[Box]]] | None = None) -> InFlight:
    """Preprocess `frames` (their regions in `crops` mode; `layouts` where already found) and queue them on the device."""
    images = [f.image for f in frames]
    if crops == "center":
        x, layout = scorer.preprocess(images), None
    else:
        x, layout = scorer.preprocess_crops(images, crops, layouts or None)
    return InFlight(list(frames), scorer.score_async(x), layout)


def input_rules(method: str, cascade: bool) -> list[str]:
    """The preprocessing rules a scorer of these settings reads, in a fixed order: each method's own, and
    DistilDIRE's for a cascade's lite model (see `streamdet.preprocess.RULES`)."""
    rules = ["distildire", "dire"] if method == "both" else [method]
    return ["distildire", *rules] if cascade and "distildire" not in rules else rules


def prepare_on_cpu(images: Sequence[Any], crops: str, size: int, rules: Sequence[str], faces: FaceFinder | None = None) -> tuple[dict[str, Any], list | None]:
    """The model inputs of uint8 RGB frames by each rule, computed where they were decoded (a Ray decode task, so
    only S×S inputs cross the object store, not whole frames): what a scorer's own preprocessing gives on a CPU,
    and the crop layout. `send_prepared` scores them."""
    if crops == "center":
        return preprocess_each(list(images), size, rules, "cpu"), None
    layout = [crop_boxes(image, crops, faces or FaceFinder()) for image in images]
    return preprocess_each(list(images), size, rules, "cpu", boxes=[boxes for _, boxes in layout]), layout


def send_prepared(scorer: Scorer, frames: Sequence[Any], x: dict[str, Any], layout: list | None) -> InFlight:
    """Queue inputs from `prepare_on_cpu` (rule → rows in frame order, `layout` as it gave) on the scorer's device."""
    return InFlight(list(frames), scorer.score_async(one_or_each({rule: t.to(scorer.device) for rule, t in x.items()})), layout)


def score_frames(scorer: Scorer, frames: Sequence[FrameLike], crops: str = "center") -> list[FrameScore]:
    """The scores of `frames`, in order: `send` then `collect`."""
    return send(scorer, frames, crops).collect() if frames else []
