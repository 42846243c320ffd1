"""The cascade: the lite detector scores every frame; only frames at or above the triage score go through the
ADM and the student. It has the Detector's interface, so scan and watch run it as they run a Detector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .crops import Box
from .detector import Detector
from .device import autocast, pick_precision
from .errors import ConfigError
from .models.lite import LiteDetector, load_lite
from .preprocess import Inputs, for_rule, take_rows
from .upload import PendingScores

LITE = "lite"
FULL = "full"


class Cascade:
    """Scores frames with `lite`, escalating those with P(fake) ≥ `triage` to the full `detector`."""

    def __init__(self, detector: Detector, lite: LiteDetector, triage: float, path: str | Path = "") -> None:
        if not 0.0 <= triage <= 1.0:
            raise ConfigError(f"--triage {triage}: must be a probability between 0 and 1")
        self.detector = detector
        self.device = detector.device
        self.batch = detector.batch
        self.methods = (detector.method,)  # one method: frames the lite model keeps have no other score
        self.faces = detector.faces
        self.rules = ("distildire", detector.method)  # the lite model reads DistilDIRE's preprocessing, the full pipeline its method's
        self.triage = triage
        self.path = path
        self.lite = lite.to(self.device).eval().requires_grad_(False)
        self.lite_precision = pick_precision("auto", self.device)
        self.frames = 0
        self.escalated = 0

    @classmethod
    def load(cls, detector: Detector, path: str | Path, triage: float) -> "Cascade":
        """A cascade around `detector` with the lite checkpoint at `path` (it must be trained at the ADM's input size)."""
        lite, meta = load_lite(path)
        if meta.get("image_size") != detector.image_size:
            raise ConfigError(
                f"{path}: the lite detector was distilled on {meta.get('image_size')}px frames, this config's ADM reads "
                f"{detector.image_size}px; distill it again with this config"
            )
        return cls(detector, lite, triage, path)

    def describe(self) -> dict[str, Any]:
        """The full detector's set-up, with the cascade's lite model, triage and escalation counts so far."""
        return {
            **self.detector.describe(), "methods": list(self.methods),
            "cascade": {"lite": str(self.path), "triage": self.triage, "frames": self.frames, "escalated": self.escalated},
        }

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray]) -> Inputs:
        """Each stage's input, sent to the device once (one tensor where both stages read the same rule's)."""
        return self.detector.preprocess(frames, self.rules)

    def preprocess_crops(self, frames: Sequence, mode: str, layout: Sequence[tuple[str, list[Box]]] | None = None) -> tuple[Inputs, list]:
        """The crops of each frame in `mode` as both stages read them, and each frame's (kind, boxes) (see `Detector.preprocess_crops`)."""
        return self.detector.preprocess_crops(frames, mode, layout, self.rules)

    @torch.inference_mode()
    def _lite_scores(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.lite_precision):
            return torch.sigmoid(self.lite(x).float())

    def score_async(self, x: Inputs) -> PendingScores:
        """P(fake) per frame, each from the lite model or, at or above the triage score, from the full pipeline;
        `scored_by` names which."""
        scores = self.batch.run(self._lite_scores, for_rule(x, "distildire"))
        escalate = (scores >= self.triage).cpu()
        chosen = escalate.nonzero().squeeze(1)
        if len(chosen):
            scores = scores.clone()
            scores[chosen.to(scores.device)] = torch.sigmoid(self.detector.logits(take_rows(x, chosen)))
        self.frames += len(escalate)
        self.escalated += len(chosen)
        return PendingScores(scores, [FULL if e else LITE for e in escalate.tolist()])

    def score(self, x: Inputs) -> torch.Tensor:
        """P(fake) per frame, (N,) float32 on the CPU."""
        return torch.tensor(self.score_async(x).result(), dtype=torch.float32)
