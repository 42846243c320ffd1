"""What the exporter writes beside each exported file: the batch range it accepts and its metadata JSON."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ExportError
from ..files import write_text
from ..runtime.artifacts import SCHEMA, Identity, metadata_path
from ..version import __version__
from ..weights import file_sha256


@dataclass(frozen=True)
class BatchRange:
    """The batch sizes an exported graph accepts (min..max) and the one TensorRT tunes for (opt)."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ExportError(f"batch range must satisfy 1 <= min <= opt <= max, not {self.min}/{self.opt}/{self.max}")

    @classmethod
    def around(cls, batch: int, low: int = 1, opt: int | None = None, high: int | None = None) -> "BatchRange":
        """The range asked for; unset, the largest is the scan batch `batch` (or opt, if larger) and opt the smaller of batch and largest."""
        if high is None:
            high = opt if opt is not None and opt > batch else batch
        return cls(low, opt if opt is not None else min(batch, high), high)


def describe(identity: Identity, artifact: Path, inputs: list[dict], outputs: list[dict], batch: BatchRange, **extra: Any) -> dict[str, Any]:
    """The metadata of a freshly written artifact: its origin, interface, precision and (for TensorRT) target."""
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "streamdet": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": identity.model,
        "format": identity.format,
        "precision": identity.precision,
        "file": artifact.name,
        "file_sha256": file_sha256(artifact),
        "checkpoint": {"path": identity.checkpoint, "sha256": identity.checkpoint_sha256},
        "config": dict(identity.config),
        "inputs": inputs,
        "outputs": outputs,
        "batch": dataclasses.asdict(batch),
    }
    if identity.format == "tensorrt":
        meta["tensorrt"] = {"version": identity.tensorrt_version, "gpu": identity.gpu}
    meta.update(extra)
    return meta


def write_metadata(artifact: Path, meta: Mapping[str, Any]) -> Path:
    """Write the metadata JSON beside `artifact`, atomically."""
    path = metadata_path(artifact)
    write_text(path, json.dumps(meta, indent=2) + "\n", fsync=True)
    return path
