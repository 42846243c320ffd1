"""`streamdet train`, `streamdet eval` and `streamdet distill-lite`: students trained, measured and distilled."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.console import Console

from ..files import write_text
from .common import ADM, BACKEND, CONFIG, DEVICE, DIRE, ENGINES, PRECISION, STUDENT_PRECISION, checked_outputs, count_progress, err, fail, model_options, settings_from, stdout_console, user_errors, warn

if TYPE_CHECKING:
    pass


def train_command(
    dataset: Path = typer.Argument(..., help="Prepared frame dataset."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder for checkpoints and metrics (default: runs/<dataset name>)."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder given to prepare (default: DATASET/cache)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config name in configs/ or a YAML file (see its train: section)."),
    teacher: Optional[str] = typer.Option(None, help="Teacher weights: a torchvision resnet50 state_dict file (default: torchvision's ImageNet download)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs."),
    batch: Optional[int] = typer.Option(None, min=1, help="Images per step and process."),
    lr: Optional[float] = typer.Option(None, min=0.0, help="Adam learning rate."),
    kd_weight: Optional[float] = typer.Option(None, min=0.0, help="λ, the weight of the distillation loss (default 0.5)."),
    no_kd: bool = typer.Option(False, "--no-kd", metavar="", help="Train with the classification loss only (needs no DIRE, no teacher)."),
    val_fraction: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Validation share when the dataset has no manifest split."),
    seed: Optional[int] = typer.Option(None, help="Seed of initialisation, data order, augmentation and split."),
    loader_workers: Optional[int] = typer.Option(None, "--loader-workers", min=0, help="Data loader processes (default: train.workers)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N (under torchrun: each process's GPU)."),
    precision: Optional[str] = typer.Option(None, help="auto (bf16/fp16 mixed precision on CUDA), fp32, fp16 or bf16."),
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue the run in --out from its last.pth."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Train a student by distillation; launch with `torchrun --nproc-per-node N --no-python streamdet train …` for DDP."""
    from ..train import train

    with user_errors():
        options = {"teacher": teacher, "epochs": epochs, "batch": batch, "lr": lr, "kd_weight": kd_weight, "val_fraction": val_fraction, "seed": seed, "workers": loader_workers, "precision": precision}
        flags = {"workers": "--loader-workers", "kd_weight": "--kd-weight", "val_fraction": "--val-fraction"}
        cfg = settings_from(config, {
            "device": ("--device", device), "train.kd": ("--no-kd", False if no_kd else None),
            **{f"train.{key}": (flags.get(key, f"--{key}"), value) for key, value in options.items()},
        })
        run_dir = out or Path("runs") / dataset.resolve().name
        bar, update = count_progress("training", quiet)

        def on_step(epoch: int, done: int, total: int, loss: float) -> None:
            bar.update(bar.task_ids[0], description=f"epoch {epoch + 1}/{cfg.train.epochs} loss {loss:.4f}")
            update(done, total)

        def on_epoch(r: dict) -> None:
            kd = f", kd {r['train_kd']:.4f}" if r.get("train_kd") is not None else ""
            val = f"; val loss {r['val_loss']:.4f} acc {r['val_acc']:.3f} AP {r['val_ap'] if r['val_ap'] is None else round(r['val_ap'], 3)}" if "val_loss" in r else ""
            bar.console.print(f"epoch {r['epoch']}/{cfg.train.epochs}: loss {r['train_loss']:.4f} (bce {r['train_bce']:.4f}{kd}){val}", highlight=False, soft_wrap=True)

        with bar:
            result = train(dataset, cfg, run_dir, cache_dir=cache, resume=resume, on_step=on_step, on_epoch=on_epoch)
    if result.main:
        typer.echo(f"{run_dir}: last checkpoint {result.last}" + (f", best {result.best}" if result.best.is_file() else ""))


def eval_command(
    dataset: Path = typer.Argument(..., help="Frame dataset (real/ and fake/<generator>/)."),
    student: Optional[str] = typer.Option(None, help="Student checkpoint: a file (e.g. a run's best.pth) or a registered name (default: the config's)."),
    config: Optional[str] = CONFIG,
    method: Optional[str] = typer.Option(None, help="distildire (default: the config's method), or dire: the DIRE classifier (--dire) reads each image's DIRE (cached by prepare, else computed)."),
    dire: Optional[str] = DIRE,
    adm: Optional[str] = typer.Option(None, help="ADM checkpoint, needed only for images without a cached eps and for backends other than torch."),
    cache: Optional[Path] = typer.Option(None, help="Cache folder (default: DATASET/cache)."),
    split: str = typer.Option("all", help="all, train or val: the manifest's split, else the one train draws (train.val_fraction, train.seed)."),
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Images per model call."),
    backend: Optional[str] = BACKEND,
    engines: Optional[Path] = ENGINES,
    student_precision: Optional[str] = STUDENT_PRECISION,
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="P(fake) at which an image or video counts as FAKE."),
    json_: bool = typer.Option(False, "--json", metavar="", help="One JSON document instead of the table."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the output to this file."),
    degrade: Optional[List[str]] = typer.Option(None, "--degrade", help="Score under degradations too, e.g. jpeg:95,75,50,30  scale:0.75,0.5  blur:1,2  noise:5  h264:23,28,35  hevc:28  scale:0.5+h264:28 (repeatable)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --degrade: draw AP against strength per degradation into this PNG (needs matplotlib)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Accuracy and average precision per generator and on average (and per video for `frames` datasets); unless eager fp32, the change against it.

    With --degrade: the same under each degradation, with the change against the clean frames.
    """
    import json

    from ..train import evaluate
    from ..train.tables import render, render_robustness

    with user_errors():
        cfg = settings_from(config, {
            **model_options(adm, student, device, precision, batch), "backend": ("--backend", backend), "engines": ("--engines", engines and str(engines)),
            "student_precision": ("--student-precision", student_precision), "threshold": ("--threshold", threshold), "weights.dire": ("--dire", dire),
            "method": ("--method", method),
        })
        checked_outputs(out, plot)
        if plot is not None and not degrade:
            fail(f"{plot}: --plot draws the --degrade results; give at least one --degrade SPEC")
        if degrade:
            from ..train.plot import plot_robustness
            from ..train.robustness import degradations, robustness

            degradations(degrade)  # a bad SPEC fails before any model is loaded
            bar, update = count_progress("degradations", quiet)
            with bar:
                result = robustness(dataset, cfg, degrade, split=split, progress=update)
            if plot is not None:
                plot_robustness(result, plot)
        else:
            bar, update = count_progress("computing DIRE" if cfg.method == "dire" else "computing eps", quiet)
            with bar:
                result = evaluate(dataset, cfg, cache_dir=cache, split=split, progress=update, on_error=warn)
    show = render_robustness if degrade else render
    if json_:
        text = json.dumps(result.to_dict(), indent=2) + "\n"
        if out is not None:
            write_text(out, text, fsync=True)
        else:
            sys.stdout.write(text)
    elif out is not None:
        console = Console(file=io.StringIO(), width=200)
        console.print(show(result))
        write_text(out, console.file.getvalue(), fsync=True)
    else:
        stdout_console().print(show(result))


def distill_lite_command(
    dataset: Path = typer.Argument(..., help="Frame dataset (real/ and fake/, labels used) or any folder of images and videos (no labels needed)."),
    teacher_student: str = typer.Option(..., "--teacher-student", help="The student of the full pipeline to imitate: a file or a registered name."),
    out: Path = typer.Option(Path("lite.pth"), "--out", "-o", help="Lite checkpoint to write (for scan/watch --cascade)."),
    backbone: str = typer.Option("resnet18", help="resnet18, resnet34 or mobilenet_v3_small (random init: nothing is downloaded)."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    device: Optional[str] = DEVICE,
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs (default: train.epochs)."),
    batch: Optional[int] = typer.Option(None, min=1, help="Frames per training step (default: train.batch)."),
    lr: Optional[float] = typer.Option(None, min=0.0, help="Adam learning rate (default: train.lr)."),
    kd_weight: Optional[float] = typer.Option(None, min=0.0, help="Weight of the feature-imitation loss (default: train.kd_weight)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No per-epoch lines on stderr."),
) -> None:
    """Distill the ADM-free lite detector from the full pipeline (ADM + student) on frames; labels are used where present."""
    from ..train.lite import distill_lite

    with user_errors():
        cfg = settings_from(config, {
            "device": ("--device", device), "weights.adm": ("--adm", adm), "train.epochs": ("--epochs", epochs), "train.batch": ("--batch", batch),
            "train.lr": ("--lr", lr), "train.kd_weight": ("--kd-weight", kd_weight),
        })
        checked_outputs(out)
        result = distill_lite(
            dataset, cfg, teacher_student, out, backbone=backbone,
            on_epoch=None if quiet else lambda epoch, loss: err.print(f"epoch {epoch + 1}: loss {loss:.4f}", highlight=False),
        )
    typer.echo(
        f"{result.path}: {result.frames} training frames; on {result.val_frames or result.frames} "
        f"{'held-out' if result.val_frames else 'training'} frames mean |P_lite - P_full| {result.mean_abs_dp:.3f}, "
        f"same side of the threshold {result.agreement:.1%}"
    )
