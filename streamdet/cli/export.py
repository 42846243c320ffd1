"""`streamdet export`: the models as ONNX or TensorRT files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from .common import ADM, CONFIG, STUDENT, download_progress, settings_from, user_errors

if TYPE_CHECKING:
    pass


def export_command(
    format_: Optional[str] = typer.Option(None, "--format", "-f", help="onnx (default) or tensorrt."),
    precision: Optional[str] = typer.Option(None, help="fp32 (default), fp16, bf16 (tensorrt only), int8 (needs --calibrate; the student unless --model noise) or fp8 (the noise model; tensorrt on compute capability ≥ 8.9; needs --calibrate)."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="noise or student; repeat for both (the default; the student only at int8)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write the files and their metadata into (default: the config's engines, engines/)."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = typer.Option(None, help="Where int8 calibration computes eps: auto, cpu, cuda or cuda:N (tensorrt: the GPU to build for)."),
    min_batch: Optional[int] = typer.Option(None, min=1, help="Smallest batch the exported graph accepts (default 1)."),
    opt_batch: Optional[int] = typer.Option(None, min=1, help="Batch TensorRT tunes for (default: the config's batch)."),
    max_batch: Optional[int] = typer.Option(None, min=1, help="Largest batch the exported graph accepts (default: the config's batch)."),
    calibrate: Optional[Path] = typer.Option(None, help="Folder of images / videos like those you will scan, to calibrate int8 on."),
    calibration_frames: Optional[int] = typer.Option(None, min=1, help="Most frames used for int8 calibration (default 128)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No download progress."),
) -> None:
    """Export the noise model and the student to ONNX or TensorRT, each with a metadata JSON beside it."""
    from ..export.exporter import export_models
    from ..export.metadata import BatchRange
    from ..runtime.artifacts import metadata_path

    with user_errors():
        cfg = settings_from(config, {
            "weights.adm": ("--adm", adm), "weights.student": ("--student", student), "device": ("--device", device),
            "engines": ("--out", out and str(out)), "export.format": ("--format", format_), "export.precision": ("--precision", precision),
            "export.min_batch": ("--min-batch", min_batch), "export.opt_batch": ("--opt-batch", opt_batch), "export.max_batch": ("--max-batch", max_batch),
            "export.calibration_frames": ("--calibration-frames", calibration_frames),
        })
        e = cfg.export
        batches = BatchRange.around(cfg.batch, e.min_batch, e.opt_batch, e.max_batch)
        paths = export_models(
            cfg, e.format, e.precision, batches, Path(cfg.engines), models=model,
            calibrate=calibrate, calibration_frames=e.calibration_frames, progress=None if quiet else download_progress,
        )
    for path in paths:
        typer.echo(f"{path} ({path.stat().st_size / 1e6:.1f} MB), metadata {metadata_path(path)}")
