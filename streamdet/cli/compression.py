"""`streamdet compress prune|svd|quantize`: smaller students, fine-tuned against the original."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import CONFIG, checked_outputs, count_progress, fail, settings_from, stdout_console, user_errors, warn

# `streamdet compress …`: options shared by its three commands.
COMPRESS_DATASET = typer.Option(..., "--dataset", "-d", help="Prepared frame dataset (eps cached): fine-tune on its train split, compare on its val split.")


COMPRESS_OUT = typer.Option(None, "--out", "-o", help="Compressed checkpoint to write (default: STUDENT-METHOD.pth in the current folder).")


COMPRESS_STEPS = typer.Option(None, min=0, help="Fine-tune steps (distillation from the original student's P; default: compress.steps, 50).")


COMPRESS_BATCH = typer.Option(None, min=1, help="Images per fine-tune step (default: compress.batch, 8).")


COMPRESS_LR = typer.Option(None, min=0.0, help="Adam learning rate of the fine-tune (default: compress.lr, 1e-6).")


COMPRESS_LABELS = typer.Option(False, "--labels", metavar="", help="Fine-tune with BCE against the labels too (the student then drifts from the original's scores).")


COMPRESS_CACHE = typer.Option(None, help="Cache folder given to prepare (default: DATASET/cache).")


COMPRESS_QUIET = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar.")


def run_compress(method: str, student: str, dataset: Path, out: Optional[Path], config: Optional[str], cache: Optional[Path], quiet: bool, **settings: object) -> None:
    """Run one compression (of a student, or the lite detector's quantization) and print the before/after table."""
    from ..compress import Settings, compress, is_lite_checkpoint, quantize_lite
    from ..compress.finetune import FEW

    with user_errors():
        cfg = settings_from(config, {
            "compress.steps": ("--steps", settings.pop("steps")), "compress.batch": ("--batch", settings.pop("batch")),
            "compress.lr": ("--lr", settings.pop("lr")), "compress.labels": ("--labels", settings.pop("labels") or None),
        })
        settings.update(dataclasses.asdict(cfg.compress))
        target = out or Path(f"{Path(student).stem}-{method}.pth")
        checked_outputs(target)
        lite = is_lite_checkpoint(student)
        if lite and method != "quantize":
            fail(f"{student}: is a lite detector; of the compress methods only quantize applies to it")
        if lite and settings["labels"]:
            fail(f"{student}: is a lite detector; it is fine-tuned against the original lite P alone (drop --labels)")
        bar, update = count_progress("fine-tuning", quiet)

        def on_step(n: int, _loss: float) -> None:
            update(n, int(settings["steps"]))

        with bar:
            if lite:
                result = quantize_lite(student, dataset, cfg, target, Settings(**settings), on_step=on_step)
            else:
                result = compress(method, student, dataset, cfg, target, Settings(**settings), cache_dir=cache, on_step=on_step)
    model = "lite detector" if lite else "student"
    table = Table(title=f"{result.out}: {method} of the {model} ({cfg.adm.image_size}² input; Acc/AP on {result.step['val_images']} {result.step['evaluated_on']} images)", title_justify="left")
    for column in (model, "params", "nonzero", "stored MB", "GFLOPs", "GBOPs", "Acc", "AP"):
        table.add_column(column, justify="right" if column != model else "left")
    for name, side in (("original", result.original), ("compressed", result.compressed)):
        c, m = side.cost, side.metrics
        ap = "n/a" if m.ap != m.ap else f"{m.ap:.3f}"
        table.add_row(name, f"{c.params:,}", f"{c.nonzero:,}", f"{side.stored_bytes / 1e6:.1f}", f"{c.gflops:.3f}", f"{c.gbops:.1f}", f"{m.acc:.3f}", ap)
    stdout_console().print(table)
    f, tune = result.fidelity, result.step["finetune"]
    typer.echo(f"max |ΔP| against the original: {f.max:.4f} (mean {f.mean:.4f}, n {f.n} {result.step['evaluated_on']} images; "
               f"fine-tune kept step {tune['kept_step']} of {tune['ran']} run)")
    if f.n < FEW:
        warn(f"|ΔP| is measured on only {f.n} held-out images (fewer than {FEW}): its mean and max are rough; give the dataset a larger val split")


def compress_prune(
    student: str = typer.Argument(..., help="Student checkpoint: a file or a registered name."),
    dataset: Path = COMPRESS_DATASET,
    out: Optional[Path] = COMPRESS_OUT,
    ratio: float = typer.Option(0.25, min=0.0, max=1.0, help="Share of --target to keep (structured pruning)."),
    target: str = typer.Option("flops", help="flops or params: what --ratio counts."),
    sparsity: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Unstructured instead: zero this share of weights by global magnitude (sparse storage)."),
    steps: Optional[int] = COMPRESS_STEPS,
    batch: Optional[int] = COMPRESS_BATCH,
    lr: Optional[float] = COMPRESS_LR,
    labels: bool = COMPRESS_LABELS,
    config: Optional[str] = CONFIG,
    cache: Optional[Path] = COMPRESS_CACHE,
    quiet: bool = COMPRESS_QUIET,
) -> None:
    """Remove whole channels (global importance, torch-pruning) to a FLOP or parameter ratio, or single weights by magnitude."""
    run_compress("prune", student, dataset, out, config, cache, quiet, ratio=ratio, target=target, sparsity=sparsity, steps=steps, batch=batch, lr=lr, labels=labels)


def compress_svd(
    student: str = typer.Argument(..., help="Student checkpoint (a pruned one too): a file or a registered name."),
    dataset: Path = COMPRESS_DATASET,
    out: Optional[Path] = COMPRESS_OUT,
    energy: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Rank per layer: keep this share of Σσ²."),
    flops: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Or: the highest energy whose FLOPs are at most this share of now."),
    steps: Optional[int] = COMPRESS_STEPS,
    batch: Optional[int] = COMPRESS_BATCH,
    lr: Optional[float] = COMPRESS_LR,
    labels: bool = COMPRESS_LABELS,
    config: Optional[str] = CONFIG,
    cache: Optional[Path] = COMPRESS_CACHE,
    quiet: bool = COMPRESS_QUIET,
) -> None:
    """Factorise the Linear and the convolutions (1×1 by SVD, k×k by spatial SVD) where that saves FLOPs."""
    run_compress("svd", student, dataset, out, config, cache, quiet, energy=energy, flops=flops, steps=steps, batch=batch, lr=lr, labels=labels)


def compress_quantize(
    student: str = typer.Argument(..., help="Student checkpoint (a pruned or factorised one too): a file or a registered name; or a lite detector from distill-lite."),
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Prepared frame dataset (eps cached) for a student; for a lite detector any folder distill-lite takes. Fine-tune on its train split, compare on its val split."),
    out: Optional[Path] = COMPRESS_OUT,
    bits: int = typer.Option(4, help="Weight and activation bits: 8, 4, 3 or 2."),
    edge_bits: int = typer.Option(8, help="Bits of the first and the last layer."),
    steps: Optional[int] = COMPRESS_STEPS,
    batch: Optional[int] = COMPRESS_BATCH,
    lr: Optional[float] = COMPRESS_LR,
    labels: bool = COMPRESS_LABELS,
    config: Optional[str] = CONFIG,
    cache: Optional[Path] = COMPRESS_CACHE,
    quiet: bool = COMPRESS_QUIET,
) -> None:
    """Quantization-aware training with learned step sizes (LSQ), distilled from the full-precision student (or lite detector, for --cascade)."""
    run_compress("quantize", student, dataset, out, config, cache, quiet, bits=bits, edge_bits=edge_bits, steps=steps, batch=batch, lr=lr, labels=labels)
