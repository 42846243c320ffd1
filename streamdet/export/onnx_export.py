"""Write an `ExportGraph` as an ONNX file with a dynamic batch axis, atomically (external weights too, when > 2 GB)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ..errors import ExportError
from ..files import move_into_place
from .graphs import ExportGraph
from .metadata import BatchRange

# Protobuf cannot hold more than 2 GB; above this much weight, it goes to an external `<file>.data`.
EXTERNAL_DATA_BYTES = 1_800_000_000


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A temporary folder inside `folder` (same file system, so its files can be renamed into place); removed after."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def external_data(path: Path) -> Path:
    """Where the weights of the ONNX file at `path` live when they are too large for it (torch's exporter's name)."""
    return path.with_name(path.name + ".data")


def publish(staged: Path, path: Path) -> None:
    """Move an ONNX file written at `staged` (and its external data, first) to `path`, each by an atomic rename."""
    if external_data(staged).exists():
        move_into_place(external_data(staged), external_data(path), fsync=True)
    else:
        external_data(path).unlink(missing_ok=True)
    move_into_place(staged, path, fsync=True)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's per-pass INFO logs and its warning about renamed batch axes."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _weight_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def write_onnx(graph: ExportGraph, path: Path, batch: BatchRange, size: int) -> None:
    """Trace `graph` with torch.export and write it as ONNX at `path` (not atomic: write into a staging folder)."""
    dynamic = batch.max > 1
    example = graph.example(2 if dynamic else 1, size)
    shapes = {name: {0: torch.export.Dim("batch", min=batch.min, max=batch.max)} for name in graph.inputs} if dynamic else None
    with _quiet_exporter():
        try:
            torch.onnx.export(
                graph.module,
                example,
                str(path),
                input_names=list(graph.inputs),
                output_names=[graph.output],
                dynamic_shapes=shapes,
                dynamo=True,
                external_data=_weight_bytes(graph.module) > EXTERNAL_DATA_BYTES,
                verbose=False,
            )
        except ImportError as exc:
            raise ExportError(f"ONNX export needs the onnx extra ({exc}): pip install 'streamdet[onnx]'") from None

