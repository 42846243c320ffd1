"""`streamdet batch`: an archive scanned on a Ray cluster into resumable part files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .common import ADM, CASCADE, CONFIG, DIRE, INTERRUPTED, PRECISION, SNAP, STUDENT, TRIAGE, UNCERTAIN, band_option, checked_outputs, err, fail, model_options, report, sampling_options, settings_from, user_errors, warn

if TYPE_CHECKING:
    pass


def batch_command(
    sources: List[str] = typer.Argument(None, help="Video files, images, folders (recursive), globs and URLs; may be empty with --list."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Folder of result part files (JSONL, one row per input); re-running skips inputs already in it."),
    cluster: Optional[str] = typer.Option(None, help="auto (default: RAY_ADDRESS or a running local Ray, else a new local one), local (always a new local one) or a Ray address (host:6379, ray://host:10001)."),
    list_: Optional[List[Path]] = typer.Option(None, "--list", help="A file with one path or URL per line; repeatable."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = typer.Option(None, help="Device of the detector actors: auto, cpu, cuda (each actor sees its own GPU)."),
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Frames per model call in each actor."),
    cascade: Optional[Path] = CASCADE,
    triage: Optional[float] = TRIAGE,
    method: Optional[str] = typer.Option(None, help="distildire (default), dire, or both, as for scan."),
    dire: Optional[str] = DIRE,
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="P(fake) at which a file is FAKE (default: the config's threshold, 0.5)."),
    uncertain: Optional[str] = UNCERTAIN,
    crops: Optional[str] = typer.Option(None, "--crops", help="Regions scored per frame: center (default), cover or faces, as for scan."),
    frames: Optional[int] = typer.Option(None, min=1, help="Sample N frames spread over each video (default: the config's)."),
    every: Optional[int] = typer.Option(None, min=1, help="Sample every Nth frame."),
    fps: Optional[float] = typer.Option(None, min=0.001, help="Sample this many frames per second of video."),
    keyframes: bool = typer.Option(False, "--keyframes", metavar="", help="Sample key frames only."),
    all_frames: bool = typer.Option(False, "--all-frames", metavar="", help="Score every frame."),
    snap: Optional[str] = SNAP,
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help="Detector actors (default: one per GPU of the cluster, else 1)."),
    gpus_per_actor: Optional[float] = typer.Option(None, min=0.0, help="GPUs per detector actor (default: 1 where the cluster has GPUs, else 0)."),
    cpus_per_actor: Optional[float] = typer.Option(None, min=0.0, help="CPUs per detector actor (default 1; decoding gets the others)."),
    num_cpus: Optional[int] = typer.Option(None, min=1, help="CPUs of a local Ray instance started here (default: all)."),
    part_rows: Optional[int] = typer.Option(None, min=1, help="Rows per part file (default 100)."),
    part_seconds: Optional[float] = typer.Option(None, min=0.0, help="Write a part file at least this often while results come in (default 30 s)."),
    retries: Optional[int] = typer.Option(None, min=0, help="Times an input whose worker crashed is run again (alone) before it is recorded as an error (default 2)."),
    ship_weights: bool = typer.Option(False, "--ship-weights", metavar="", help="Send the checkpoints through Ray's object store (when the nodes share no folder)."),
    retry_errors: bool = typer.Option(False, "--retry-errors", metavar="", help="Scan again the inputs whose row is an error (after a crash, or a file fixed in place)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Scan an archive on a Ray cluster into resumable part files; verdicts as scan's; exit codes as scan (over all inputs named), 130 on Ctrl-C."""
    from ..cluster import gather_sources, require_ray, run_batch
    from ..results import FileResult

    with user_errors():
        cfg = settings_from(config, {
            **model_options(adm, student, device, precision, batch), **sampling_options(frames, every, fps, keyframes, all_frames, snap),
            "cascade.lite": ("--cascade", cascade and str(cascade)), "cascade.triage": ("--triage", triage), "method": ("--method", method),
            "weights.dire": ("--dire", dire), "threshold": ("--threshold", threshold), "uncertain": ("--uncertain", band_option(uncertain)),
            "crops": ("--crops", crops), "cluster.address": ("--cluster", cluster), "cluster.actors": ("--actors", actors),
            "cluster.gpus_per_actor": ("--gpus-per-actor", gpus_per_actor), "cluster.cpus_per_actor": ("--cpus-per-actor", cpus_per_actor),
            "cluster.num_cpus": ("--num-cpus", num_cpus), "cluster.part_rows": ("--part-rows", part_rows),
            "cluster.part_seconds": ("--part-seconds", part_seconds), "cluster.retries": ("--retries", retries),
            "cluster.ship_weights": ("--ship-weights", ship_weights or None),
        })
        if out_dir.exists() and not out_dir.is_dir():
            fail(f"{out_dir}: is not a folder; --out-dir names the folder of part files")
        checked_outputs(out_dir / ".streamdet-write-check")
        require_ray()
        if not logging.getLogger("streamdet").isEnabledFor(logging.INFO):
            quiet_ray()
        paths = gather_sources(sources or [], list_ or [])
        if not paths:
            fail("no inputs: name files, folders or globs, or give --list FILE")
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True, disable=quiet or not err.is_terminal)
        with bar:
            task = bar.add_task("scanning", total=None)

            def on_progress(p) -> None:
                bar.update(task, completed=p.done, total=p.total, description=f"scanning: {p.errors} errors, {p.fps:.1f} frames/s")

            try:
                summary = run_batch(cfg, paths, out_dir, on_progress, retry_errors=retry_errors)
            except KeyboardInterrupt:
                fail(f"interrupted; the finished inputs are in {out_dir}: run the same command again to do the rest", INTERRUPTED)
    rows = summary.rows
    fake = sum(r["verdict"] == "FAKE" for r in rows)
    errors = [r for r in rows if r["status"] == "error"]
    rate = summary.frames / summary.elapsed if summary.elapsed > 0 else 0.0
    typer.echo(
        f"{out_dir}: {len(rows)} inputs, {fake} FAKE, {len(rows) - fake - len(errors)} REAL or UNCERTAIN, {len(errors)} errors; "
        f"this run scanned {summary.scanned} ({summary.frames} frames, {rate:.1f} frames/s), skipped {summary.skipped} already done"
    )
    for row in errors[:20]:
        warn(row["error"] or row["path"])
    if len(errors) > 20:
        warn(f"… and {len(errors) - 20} more errors (status \"error\" in the part files)")
    raise typer.Exit(report.exit_code(FileResult(r["path"], r["kind"], status=r["status"], verdict=r["verdict"]) for r in rows))


def quiet_ray() -> None:
    """Keep Ray's own log lines (token-auth notices, actor restarts, Serve's deployment notices) off stderr unless --verbose."""
    os.environ.setdefault("RAY_LOG_TO_STDERR", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    logging.getLogger("ray.serve").setLevel(logging.ERROR)
