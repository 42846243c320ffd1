"""Test shorthands for building settings and running the real engine on small checkpoints."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from streamdet.config import Config, Sampling, with_overrides
from streamdet.engine import Engine
from streamdet.engine.scan import scan as engine_scan
from streamdet.results import FileResult


def configured(base: Config, adm: Any = None, student: Any = None, sampling: Sampling | None = None, **changes: Any) -> Config:
    """`base` with the checkpoints, the sampling and top-level `changes` (``a__b`` for ``a.b``) set, validated."""
    dotted = {key.replace("__", "."): value for key, value in changes.items()}
    if adm is not None:
        dotted["weights.adm"] = str(adm)
    if student is not None:
        dotted["weights.student"] = str(student)
    if sampling is not None:
        dotted.update({f"sampling.{k}": v for k, v in dataclasses.asdict(sampling).items()})
    return with_overrides(base, {k: str(v) if isinstance(v, os.PathLike) else v for k, v in dotted.items()})


def engine(scorer: Any, sampling: Sampling | None = None, **changes: Any) -> Engine:
    """An engine around `scorer` with its own config plus `sampling` and `changes`."""
    base = scorer.config if hasattr(scorer, "config") else scorer.detector.config
    return Engine(scorer, configured(base, sampling=sampling, **changes))


def scan(scorer: Any, paths: Sequence[Any], sampling: Sampling | None = None, planes: bool | None = None, on_frames: Any = None, on_result: Any = None, **changes: Any) -> list[FileResult]:
    """Scan with `scorer` under its own config plus `sampling` and `changes`, through the engine's scan."""
    run = engine(scorer, sampling, **changes)
    return engine_scan(run.scorer, run.settings, run.conclude, paths, on_result=on_result, on_frames=on_frames, planes=planes)
