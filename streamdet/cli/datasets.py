"""`streamdet frames` and `streamdet prepare`: frame datasets from labelled videos, and their cached eps and DIRE."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .common import ADM, CONFIG, DEVICE, SNAP, checked_outputs, count_progress, model_options, sampling_options, settings_from, user_errors, warn

if TYPE_CHECKING:
    pass


def frames_command(
    src: Path = typer.Argument(..., help="Folder of labelled videos: real/*.mp4 and fake/<generator>/*.mp4."),
    dst: Path = typer.Argument(..., help="Frame dataset to write (PNG frames + manifest.jsonl)."),
    config: Optional[str] = CONFIG,
    frames: Optional[int] = typer.Option(None, min=1, help="Sample N frames spread over each video (default: the config's)."),
    every: Optional[int] = typer.Option(None, min=1, help="Sample every Nth frame."),
    fps: Optional[float] = typer.Option(None, min=0.001, help="Sample this many frames per second of video."),
    keyframes: bool = typer.Option(False, "--keyframes", metavar="", help="Sample key frames only."),
    all_frames: bool = typer.Option(False, "--all-frames", metavar="", help="Keep every frame."),
    snap: Optional[str] = SNAP,
    val_fraction: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share of the videos (per label and generator) put in the val split (default: train.val_fraction)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the train/val split (default: train.seed)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Build a frame dataset from labelled videos, split into train/val by video."""
    from ..train import build_frames

    with user_errors():
        cfg = settings_from(config, {
            **sampling_options(frames, every, fps, keyframes, all_frames, snap),
            "train.val_fraction": ("--val-fraction", val_fraction), "train.seed": ("--seed", seed),
        })
        checked_outputs(dst / "manifest.jsonl")
        bar, update = count_progress("videos", quiet)
        with bar:
            result = build_frames(
                src,
                dst,
                cfg.sampling,
                cfg.train.val_fraction,
                cfg.train.seed,
                on_video=update,
                on_error=warn,
            )
    typer.echo(f"{dst}: {result.frames} frames from {result.videos} videos ({result.train_videos} train, {result.val_videos} val); {len(result.failed)} videos failed")


def prepare_command(
    dataset: Path = typer.Argument(..., help="Frame dataset: real/ and fake/ folders of images."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder (default: DATASET/cache)."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = typer.Option(None, help="auto (default: bf16 on recent GPUs, fp16 on older ones, fp32 on the CPU), fp32, fp16 or bf16."),
    batch: Optional[int] = typer.Option(None, min=1, help="Images per model call."),
    dire_steps: Optional[int] = typer.Option(None, min=1, help="DDIM steps for DIRE (default 20, as the paper)."),
    no_dire: bool = typer.Option(False, "--no-dire", metavar="", help="Compute eps only (enough for --no-kd training and for eval)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Compute and cache each image's first-step eps and DIRE; rerun to finish an interrupted run."""
    from ..train import prepare

    with user_errors():
        cfg = settings_from(config, {**model_options(adm, None, device, precision, batch), "train.dire_steps": ("--dire-steps", dire_steps)})
        bar, update = count_progress("preparing", quiet)
        with bar:
            result = prepare(dataset, cfg, cache_dir=cache, dire=not no_dire, progress=update, on_error=warn)
    typer.echo(
        f"{dataset}: {result.images} images: computed {result.eps} eps and {result.dire} DIRE"
        f"{f' and {result.copies} augmented copies' if cfg.train.copies else ''}, "
        f"{result.done_before} were done already, {len(result.failed)} unreadable"
    )
