"""The typed result schema every entry point writes: a frame's score, a file's result, and the run that made them.

`scan`, `batch`, `watch`, `calibrate` and the Python API all produce these; the JSON, CSV and HTML outputs are
renderings of them (see docs/json.md for every field).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .provenance import Provenance

FAKE = "FAKE"
REAL = "REAL"
UNCERTAIN = "UNCERTAIN"


@dataclass(frozen=True)
class Segment:
    """One suspicious stretch: its kind, first and last flagged frame times (s), frame count, peak (and its time) and mean score."""

    kind: str
    start: float
    end: float
    frames: int
    peak: float
    peak_time: float
    mean: float

    @property
    def duration(self) -> float:
        """Seconds from the first flagged frame to the last (0 for a single frame)."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, fields in declaration order."""
        return dataclasses.asdict(self)


@dataclass
class FrameScore:
    """The score of one frame, by its index and presentation time in seconds (None where it was not finite).

    `scored_by` is the cascade's model for it (lite or full), None without a cascade. With crops other than the
    center rule, `crop` is the box (x, y, w, h) that gave the frame its score (the highest) and `crops` every crop
    scored: its kind (cover, face, or center where no face was found), box and score. With several methods,
    `score` is the primary one's and `scores` has each method's.
    """

    index: int
    time: float
    score: float | None
    scored_by: str | None = None
    crop: list[int] | None = None
    crops: list[dict[str, Any]] | None = None
    scores: dict[str, float | None] | None = None
    explain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the crop, cascade, per-method and explain fields only where used."""
        out = dataclasses.asdict(self)
        if out["crops"] is None:
            del out["crop"], out["crops"]
        for key in ("scored_by", "scores", "explain"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameScore:
        """The inverse of `to_dict` (rows that travel between processes, part files)."""
        return cls(**data)


@dataclass
class FileResult:
    """What a scan says about one input: status, verdict, file score, flagged frame count, frame scores.

    `timings` are this input's own: `decode_s` (its decoder threads), `model_s` (its share of the model calls) and
    `total_s` (their sum), never the time it waited behind other inputs. `segments` are its suspicious stretches
    (`streamdet.segments`), `provenance` what its C2PA manifest says (None where it was not read), `duration` the
    video's length in seconds (its header's, or measured from its packets; None for images and where unknown).
    """

    path: str
    kind: str
    status: str = "ok"
    error: str | None = None
    warning: str | None = None
    verdict: str | None = None
    score: float | None = None
    flagged: int = 0
    frames: list[FrameScore] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    methods: dict[str, dict[str, Any]] | None = None
    segments: list[Segment] = field(default_factory=list)
    provenance: Provenance | None = None
    duration: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the fields in a stable order (`methods` only where used; `provenance` null where not read)."""
        out = dataclasses.asdict(self)
        out["frames"] = [frame.to_dict() for frame in self.frames]
        out["segments"] = [segment.to_dict() for segment in self.segments]
        out["provenance"] = None if self.provenance is None else self.provenance.to_dict()
        if self.methods is None:
            del out["methods"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        """A result back from its `to_dict` (extra keys, such as a part file's size and mtime, are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["frames"] = [FrameScore.from_dict(f) for f in values.get("frames", [])]
        values["segments"] = [Segment(**s) for s in values.get("segments", [])]
        if values.get("provenance") is not None:
            values["provenance"] = Provenance.from_dict(values["provenance"])
        return cls(**values)


@dataclass(frozen=True)
class RunInfo:
    """What produced a set of results, as the outputs record it: the settings that decide verdicts and the models.

    `checkpoints` names each checkpoint file the settings read (by role: adm, student, dire, lite) with its
    sha256 (None where it cannot be had without a download); `time_utc` is when this record was made (ISO 8601,
    UTC, to the second: a scan's end, a job's conclusion); `command` the command line, where one produced the run.
    """

    config: str
    device: str
    precision: str
    backend: str
    method: str
    methods: list[str]
    threshold: float
    top_fraction: float
    sampling: dict[str, Any]
    crops: str = "center"
    segment_gap_s: float = 0.0
    uncertain: list[float] | None = None
    student_precision: str | None = None
    warmup_s: float | None = None
    cascade: dict[str, Any] | None = None
    version: str = ""
    checkpoints: dict[str, dict[str, str | None]] = field(default_factory=dict)
    time_utc: str = ""
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the optional parts only where used."""
        out = dataclasses.asdict(self)
        for key in ("uncertain", "cascade", "warmup_s", "command"):
            if out[key] is None:
                del out[key]
        return out
