"""`Engine`: the run's settings and its scorer, and the rules every entry point shares (score frames, conclude a file).

One engine is built per run from one settings object (`streamdet.config.load_config`: defaults < config file <
command line). `scan`, `batch` (each Ray actor builds the same engine), `watch`, `calibrate`, the service and
the Python API all score frames with `score_frames`/`send` and give files their verdict with `conclude`, so the
same file under the same settings gets the same verdict whichever of them runs it.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..aggregate import VerdictRule, conclude
from ..config import Config
from ..errors import StreamdetError
from ..results import FileResult, FrameScore, RunInfo
from ..runtime.artifacts import checkpoint_digest
from ..version import __version__
from .scoring import InFlight, Scorer, check_crops, send

if TYPE_CHECKING:
    from ..crops import Box
    from ..video import Frame
    from ..weights import Progress


class Engine:
    """A scorer (a `Detector`, or a `Cascade` around one) with the settings of the run it serves."""

    depth = 2  # model calls a caller keeps in flight: the next batch is gathered while the device computes this one

    def __init__(self, scorer: Scorer, settings: Config) -> None:
        check_crops(settings.crops)
        self.scorer = scorer
        self.settings = settings
        self.rule = VerdictRule.of(settings)

    @classmethod
    def load(cls, settings: Config, progress: Callable[[str], "Progress"] | None = None) -> "Engine":
        """Build the models the settings name (downloading missing checkpoints, `progress` per file), behind the
        lite triage where `cascade.lite` is set."""
        from ..cascade import Cascade
        from ..detector import Detector
        from ..device import pick_device
        from ..video.nvdec import resolve_decoder

        resolve_decoder(settings.decoder, pick_device(settings.device))  # a decoder this machine lacks fails before any model loads
        scorer: Scorer = Detector.load(settings, progress=progress)
        if settings.cascade.lite is not None:
            scorer = Cascade.load(scorer, settings.cascade.lite, settings.cascade.triage)
        return cls(scorer, settings)

    def with_settings(self, settings: Config) -> "Engine":
        """An engine of the same kind around the same scorer with other settings (a service job's own options)."""
        return type(self)(self.scorer, settings)

    def send(self, frames: Sequence[Any], layouts: Sequence[tuple[str, list["Box"]]] | None = None) -> InFlight:
        """Queue `frames` (objects with `.image`, `.index`, `.time`) on the device in the settings' crop mode."""
        return send(self.scorer, frames, self.settings.crops, layouts)

    def score_frames(self, frames: Sequence[Any]) -> list[FrameScore]:
        """The scores of `frames`, in order."""
        return self.send(frames).collect() if frames else []

    def conclude(self, result: FileResult, error: str | None = None, warning: str | None = None) -> FileResult:
        """Give a file whose frames are all scored its verdict (see `streamdet.aggregate.conclude`)."""
        return conclude(result, error, warning, self.rule)

    def scan(
        self,
        paths: Sequence[str | os.PathLike],
        on_result: Callable[[FileResult], None] | None = None,
        on_frames: Callable[[int], None] | None = None,
        on_scored: Callable[["Frame", FrameScore], None] | None = None,
    ) -> list[FileResult]:
        """Scan videos, images and folders (recursively); one result per input file, in input order, errors included."""
        from .scan import scan

        return scan(self.scorer, self.settings, self.conclude, paths, on_result=on_result, on_frames=on_frames, on_scored=on_scored)

    def run_info(self, command: str | None = None) -> RunInfo:
        """What the outputs record about this run: the settings that decide verdicts, the models' set-up, the
        checkpoint files with their sha256, the time (UTC) and `command`, the command line that ran it (if any)."""
        s = self.settings
        about = self.scorer.describe()
        return RunInfo(
            config=s.source, device=about["device"], precision=about["precision"], backend=about["backend"], method=about["method"],
            methods=about["methods"], threshold=s.threshold, top_fraction=s.top_fraction, sampling=dataclasses.asdict(s.sampling),
            crops=s.crops, segment_gap_s=s.segment_gap_s, uncertain=s.uncertain, student_precision=about.get("student_precision"), warmup_s=about.get("warmup_s"),
            cascade=about.get("cascade"), version=__version__, checkpoints=checkpoint_files(s),
            time_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), command=command,
        )


def checkpoint_files(settings: Config) -> dict[str, dict[str, str | None]]:
    """Each checkpoint the settings read, by role, as {file, sha256}: a registered name with its published digest
    (or its cached copy's), a file with its own (hashed once per file version); sha256 None where neither is at hand."""
    specs = {"adm": settings.weights.adm, "student": settings.weights.student}
    if settings.method != "distildire":
        specs["dire"] = settings.weights.dire
    if settings.cascade.lite is not None:
        specs["lite"] = settings.cascade.lite
    out: dict[str, dict[str, str | None]] = {}
    for role, spec in specs.items():
        try:
            name, sha256 = checkpoint_digest(spec)
        except StreamdetError:
            name, sha256 = str(spec), None
        out[role] = {"file": name, "sha256": sha256}
    return out


def fingerprint(settings: Config, digests: dict[str, str]) -> dict[str, Any]:
    """The settings that decide scores and verdicts, with the sha256 of each checkpoint they read (`digests`, by
    setting): a resumed batch must match them all, so one output folder never mixes results of different settings."""
    s = settings
    return {
        "adm": dataclasses.asdict(s.adm), "checkpoints_sha256": dict(sorted(digests.items())), "method": s.method,
        "backend": s.backend, "precision": s.precision, "student_precision": s.student_precision, "threshold": s.threshold,
        "top_fraction": s.top_fraction, "uncertain": s.uncertain, "crops": s.crops, "sampling": dataclasses.asdict(s.sampling),
        "triage": s.cascade.triage if s.cascade.lite is not None else None,
        "dire_steps": s.train.dire_steps if s.method != "distildire" else None,
    }
