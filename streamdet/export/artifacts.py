"""What an exported file is: its name, the metadata JSON beside it, and whether it fits the run that loads it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .. import __version__
from ..config import Config
from ..files import write_text
from .errors import BackendError, ExportError

SCHEMA = "streamdet-export/1"
DEFAULT_ENGINES = Path("engines")
MODELS = ("noise", "student")
EXTENSIONS = {"onnx": ".onnx", "tensorrt": ".engine"}
PRECISIONS = {
    "onnx": {"noise": ("fp32", "fp16"), "student": ("fp32", "fp16", "int8")},
    "tensorrt": {"noise": ("fp32", "fp16", "bf16"), "student": ("fp32", "fp16", "bf16", "int8")},
}


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


@dataclass(frozen=True)
class Identity:
    """What an exported file must have been made from and for, to be used by this run."""

    model: str
    format: str
    precision: str
    checkpoint: str
    checkpoint_sha256: str
    config: Mapping[str, Any]
    tensorrt_version: str | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class Artifact:
    """An exported file that passed its checks: where it is, its bytes and its metadata."""

    path: Path
    data: bytes
    meta: Mapping[str, Any]


def check_precision(fmt: str, model: str, precision: str) -> None:
    """Refuse a precision that `fmt` cannot run for `model` (bf16 has no ONNX Runtime kernels; int8 is for the student)."""
    allowed = PRECISIONS[fmt][model]
    if precision not in allowed:
        raise ExportError(f"{model} as {fmt}: precision {precision} is not available (choose {', '.join(allowed)})")


def artifact_path(folder: str | Path, model: str, precision: str, fmt: str) -> Path:
    """Where the `model` exported as `fmt` at `precision` lives in `folder`, e.g. engines/noise-fp16.engine."""
    return Path(folder) / f"{model}-{precision}{EXTENSIONS[fmt]}"


def metadata_path(artifact: Path) -> Path:
    """The metadata JSON beside an exported file (`<file>.json`)."""
    return artifact.with_name(artifact.name + ".json")


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in 8 MiB pieces (checkpoints are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def config_fingerprint(config: Config) -> dict[str, Any]:
    """The part of a config an exported graph depends on: the ADM architecture and input size (and where it came from)."""
    return {"source": config.source, "adm": dataclasses.asdict(config.adm)}


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
        "file_sha256": sha256_file(artifact),
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


def read_metadata(artifact: Path, rebuild: str) -> dict[str, Any]:
    """The metadata of an exported file; a missing or unreadable file is a one-line error with the rebuild command."""
    if not artifact.is_file():
        raise BackendError(f"{artifact}: no such exported file; build it: {rebuild}")
    path = metadata_path(artifact)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackendError(f"{path}: metadata missing, so {artifact.name} cannot be checked; rebuild it: {rebuild}") from None
    except (OSError, ValueError) as exc:
        raise BackendError(f"{path}: unreadable metadata ({exc}); rebuild it: {rebuild}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise BackendError(f"{path}: not streamdet export metadata ({SCHEMA}); rebuild it: {rebuild}")
    return meta


def _first_difference(theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> str | None:
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) != ours.get(key):
            return f"{key} {theirs.get(key)!r}, this config has {ours.get(key)!r}"
    return None


def mismatch(meta: Mapping[str, Any], want: Identity) -> str | None:
    """Why an exported file described by `meta` cannot serve the run described by `want`, or None if it can."""
    for field in ("model", "format", "precision"):
        if meta.get(field) != getattr(want, field):
            return f"it is a {meta.get(field)} {field}, this run needs {getattr(want, field)}"
    sha = (meta.get("checkpoint") or {}).get("sha256")
    if sha != want.checkpoint_sha256:
        return f"it was exported from another checkpoint (sha256 {str(sha)[:12]}…, {want.checkpoint} has {want.checkpoint_sha256[:12]}…)"
    theirs = (meta.get("config") or {}).get("adm") or {}
    ours = want.config["adm"]
    if want.model == "student":
        theirs, ours = {"image_size": theirs.get("image_size")}, {"image_size": ours["image_size"]}
    difference = _first_difference(theirs, ours)
    if difference is not None:
        return f"it was exported for another config ({difference})"
    if want.format == "tensorrt":
        built = meta.get("tensorrt") or {}
        if built.get("version") != want.tensorrt_version:
            return f"it was built with TensorRT {built.get('version')}, this is TensorRT {want.tensorrt_version}"
        if built.get("gpu") != want.gpu:
            return f"it was built for the GPU {built.get('gpu')!r}, this is {want.gpu!r}"
    return None


def check_metadata(meta: Mapping[str, Any], want: Identity, artifact: Path, rebuild: str) -> None:
    """Refuse, in one line that names the file, the reason and the rebuild command, an artifact that does not fit."""
    reason = mismatch(meta, want)
    if reason is not None:
        raise BackendError(f"{artifact}: {reason}; rebuild it: {rebuild}")


def check_file(meta: Mapping[str, Any], artifact: Path, data: bytes, rebuild: str) -> None:
    """Refuse an artifact whose bytes are not those its metadata was written for (a half-replaced pair)."""
    if hashlib.sha256(data).hexdigest() != meta.get("file_sha256"):
        raise BackendError(f"{artifact}: does not match its metadata (file changed after export); rebuild it: {rebuild}")


def rebuild_command(fmt: str, precision: str, model: str, config_source: str, checkpoints: tuple[Path, Path], engines: Path) -> str:
    """The `streamdet export` command line that makes the artifact this run needs."""
    parts = ["streamdet", "export", "--format", fmt, "--precision", precision, "--model", model]
    if config_source != "<defaults>":
        parts += ["--config", config_source]
    parts += ["--adm", str(checkpoints[0]), "--student", str(checkpoints[1])]
    if Path(engines) != DEFAULT_ENGINES:
        parts += ["--out", str(engines)]
    command = shlex.join(parts)
    return command + " --calibrate FRAMES_FOLDER" if precision == "int8" else command


def load_artifact(
    config: Config,
    fmt: str,
    model: str,
    precision: str,
    checkpoints: tuple[Path, Path],
    engines: Path,
    tensorrt_version: str | None = None,
    gpu: str | None = None,
) -> Artifact:
    """An exported file checked against this run (model, precision, checkpoint sha256, config, TensorRT, GPU)."""
    rebuild = rebuild_command(fmt, precision, model, config.source, checkpoints, engines)
    check_precision(fmt, model, precision)
    path = artifact_path(engines, model, precision, fmt)
    meta = read_metadata(path, rebuild)
    checkpoint = checkpoints[0] if model == "noise" else checkpoints[1]
    want = Identity(
        model=model,
        format=fmt,
        precision=precision,
        checkpoint=str(checkpoint),
        checkpoint_sha256=sha256_file(checkpoint),
        config=config_fingerprint(config),
        tensorrt_version=tensorrt_version,
        gpu=gpu,
    )
    check_metadata(meta, want, path, rebuild)
    data = path.read_bytes()
    check_file(meta, path, data, rebuild)
    return Artifact(path, data, meta)
