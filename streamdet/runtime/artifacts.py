"""What an exported file is: its name, the metadata JSON beside it, and whether it fits the run that loads it.

The exporter writes these files (`streamdet.export`); the backends read and check them here, from the files
and their metadata alone: no model is built and no checkpoint is read to decide.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..config import Config
from ..errors import BackendError, ExportError
from ..weights import REGISTRY, cached_path, file_sha256

SCHEMA = "streamdet-export/1"
DEFAULT_ENGINES = Path("engines")
MODELS = ("noise", "student")
EXTENSIONS = {"onnx": ".onnx", "tensorrt": ".engine"}
PRECISIONS = {
    "onnx": {"noise": ("fp32", "fp16", "int8"), "student": ("fp32", "fp16", "int8")},
    "tensorrt": {"noise": ("fp32", "fp16", "bf16", "int8", "fp8"), "student": ("fp32", "fp16", "bf16", "int8")},
}


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
    """An exported file that passed its checks: where it is, its metadata, and the command that rebuilds it."""

    path: Path
    meta: Mapping[str, Any]
    rebuild: str


def check_precision(fmt: str, model: str, precision: str) -> None:
    """Refuse a precision that `fmt` cannot run for `model` (bf16 has no ONNX Runtime kernels; fp8 is TensorRT's, for the noise model)."""
    allowed = PRECISIONS[fmt][model]
    if precision not in allowed:
        raise ExportError(f"{model} as {fmt}: precision {precision} is not available (choose {', '.join(allowed)})")


def artifact_path(folder: str | Path, model: str, precision: str, fmt: str) -> Path:
    """Where the `model` exported as `fmt` at `precision` lives in `folder`, e.g. engines/noise-fp16.engine."""
    return Path(folder) / f"{model}-{precision}{EXTENSIONS[fmt]}"


def metadata_path(artifact: Path) -> Path:
    """The metadata JSON beside an exported file (`<file>.json`)."""
    return artifact.with_name(artifact.name + ".json")


def config_fingerprint(config: Config) -> dict[str, Any]:
    """The part of a config an exported graph depends on: the ADM architecture and input size (and where it came from)."""
    return {"source": config.source, "adm": dataclasses.asdict(config.adm)}


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


def check_file(meta: Mapping[str, Any], artifact: Path, rebuild: str) -> None:
    """Refuse an artifact whose bytes are not those its metadata was written for (a half-replaced pair).

    The digest is cached by size and modification time, so a multi-gigabyte file is hashed once, not at every start.
    """
    if file_sha256(artifact) != meta.get("file_sha256"):
        raise BackendError(f"{artifact}: does not match its metadata (file changed after export); rebuild it: {rebuild}")


def checkpoint_digest(spec: str | Path) -> tuple[str, str]:
    """(label, sha256) of the checkpoint an exported file must come from, without loading or downloading it.

    A registered name gives its published digest (or that of its cached copy); a file gives its own (cached) digest.
    """
    weight = REGISTRY.get(str(spec))
    if weight is not None:
        if weight.sha256:
            return weight.name, weight.sha256
        path = cached_path(weight)
        if not path.is_file():
            raise BackendError(f"{weight.name}: no published checksum and no cached copy, so the exported files cannot be matched to it; run `streamdet weights download {weight.name}` or pass the checkpoint file")
        return str(path), file_sha256(path)
    path = Path(spec)
    if not path.is_file():
        raise BackendError(f"{spec}: no such checkpoint file or registered name (see `streamdet weights list`)")
    return str(path), file_sha256(path)


def rebuild_command(fmt: str, precision: str, model: str, config_source: str, checkpoints: tuple[str | Path, str | Path], engines: Path) -> str:
    """The `streamdet export` command line that makes the artifact this run needs."""
    parts = ["streamdet", "export", "--format", fmt, "--precision", precision, "--model", model]
    if config_source != "<defaults>":
        parts += ["--config", config_source]
    parts += ["--adm", str(checkpoints[0]), "--student", str(checkpoints[1])]
    if Path(engines) != DEFAULT_ENGINES:
        parts += ["--out", str(engines)]
    command = shlex.join(parts)
    return command + " --calibrate FRAMES_FOLDER" if precision in ("int8", "fp8") else command


def load_artifact(
    config: Config,
    fmt: str,
    model: str,
    precision: str,
    checkpoints: tuple[str | Path, str | Path],
    engines: Path,
    tensorrt_version: str | None = None,
    gpu: str | None = None,
) -> Artifact:
    """An exported file checked against this run (model, precision, checkpoint, config, TensorRT, GPU) from its metadata.

    `checkpoints` are the ADM and student specs (registered names or files) the run stands for.
    """
    rebuild = rebuild_command(fmt, precision, model, config.source, checkpoints, engines)
    check_precision(fmt, model, precision)
    path = artifact_path(engines, model, precision, fmt)
    meta = read_metadata(path, rebuild)
    label, digest = checkpoint_digest(checkpoints[0] if model == "noise" else checkpoints[1])
    want = Identity(
        model=model,
        format=fmt,
        precision=precision,
        checkpoint=label,
        checkpoint_sha256=digest,
        config=config_fingerprint(config),
        tensorrt_version=tensorrt_version,
        gpu=gpu,
    )
    check_metadata(meta, want, path, rebuild)
    check_file(meta, path, rebuild)
    return Artifact(path, meta, rebuild)
