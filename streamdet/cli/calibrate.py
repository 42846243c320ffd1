"""`streamdet calibrate`: the threshold for a false-positive rate on your real media, written into a config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .common import ADM, BACKEND, CONFIG, DEVICE, ENGINES, PRECISION, STUDENT, STUDENT_PRECISION, checked_outputs, load_engine, model_options, settings_from, user_errors, warn

if TYPE_CHECKING:
    pass


def calibrate_command(
    real: Path = typer.Argument(..., help="Folder (or file) of real media like those you will scan: none of it is synthetic."),
    out: Path = typer.Option(..., "--out", "-o", help="Config file to write: the base config plus the threshold; use it with --config."),
    fpr: float = typer.Option(0.01, "--fpr", min=0.0, max=0.999, help="Highest false-positive rate allowed on the real media."),
    fake: Optional[Path] = typer.Option(None, "--fake", help="Folder of synthetic media: reports the true-positive rate the threshold gives."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Frames per model call (default: the config's batch, 16)."),
    backend: Optional[str] = BACKEND,
    engines: Optional[Path] = ENGINES,
    student_precision: Optional[str] = STUDENT_PRECISION,
    crops: Optional[str] = typer.Option(None, "--crops", help="Calibrate for this crop mode (center, cover, faces; written into the config too)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No download progress."),
) -> None:
    """Find the threshold that keeps false positives on your real media at or below --fpr, and write it into a config."""
    from ..calibrate import calibrate, write_config

    with user_errors():
        options = {
            **model_options(adm, student, device, precision, batch), "backend": ("--backend", backend), "engines": ("--engines", engines and str(engines)),
            "student_precision": ("--student-precision", student_precision), "crops": ("--crops", crops),
        }
        cfg = settings_from(config, options)
        checked_outputs(out)
        engine = load_engine(cfg, quiet)
        result = calibrate(engine, real, fpr, fake)
        recorded = {key: value for key, (_, value) in options.items() if value is not None and key in ("crops", "weights.adm", "weights.student")}
        write_config(result, config, out, recorded)
    typer.echo(f"threshold {result.threshold:.6g} for a false-positive rate of at most {fpr:g}")
    typer.echo(f"false positives on {real}: {result.real}")
    if result.fake is not None:
        typer.echo(f"true positives on {fake}: {result.fake}")
    if result.real.total < 1 / max(fpr, 1e-12):
        warn(f"{result.real.total} real inputs measure a false-positive rate only in steps of {1 / result.real.total:.3g}: the interval above says how little that pins down; add real media for a rate of {fpr:g}")
    typer.echo(f"wrote {out}: use it with --config {out}")
