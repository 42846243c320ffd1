"""What the commands share: the common options, settings from the command line, one-line errors, progress bars."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn

from ..aggregate import parse_band
from ..errors import ConfigError, StreamdetError, shown
from ..files import check_writable

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Engine


def lazy_module(name: str) -> ModuleType:
    """`name`, imported when first used (the standard library's LazyLoader recipe): `--help`, `--version` and
    config errors do not pay for pydantic, the weights registry or the report code."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


config_module = lazy_module("streamdet.config")


report = lazy_module("streamdet.report")


weights = lazy_module("streamdet.weights")


err = Console(stderr=True)


# Options shared by several commands (scan, watch, export, frames, prepare, eval); typer copies an option per use.
CONFIG = typer.Option(None, "--config", "-c", help="Config name in configs/ or a YAML file.")


ADM = typer.Option(None, help="ADM checkpoint: a file or a registered name.")


STUDENT = typer.Option(None, help="Student checkpoint: a file or a registered name.")


DEVICE = typer.Option(None, help="auto (default: CUDA where there is a GPU), cpu, cuda or cuda:N.")


PRECISION = typer.Option(None, help="auto (default: bf16 on recent GPUs, fp16 on older ones, fp32 on the CPU), fp32, fp16 or bf16; int8 or fp8 run a quantized ADM exported by `streamdet export --model noise` (--backend onnxruntime or tensorrt).")


BACKEND = typer.Option(None, help="What runs the models: torch (default), compile (torch.compile), onnxruntime or tensorrt (files from `streamdet export`).")


ENGINES = typer.Option(None, help="Folder of the exported files for onnxruntime / tensorrt (default: engines).")


STUDENT_PRECISION = typer.Option(None, help="Student precision for onnxruntime / tensorrt when not --precision (e.g. int8).")


CASCADE = typer.Option(None, "--cascade", help="Lite detector checkpoint (from `streamdet distill-lite`): it scores every frame; only frames at or above --triage go through the ADM and the student.")


TRIAGE = typer.Option(None, "--triage", min=0.0, max=1.0, help="With --cascade: the lite P(fake) at which a frame is escalated to the full pipeline (default 0.2).")


DIRE = typer.Option(None, "--dire", help="DIRE classifier checkpoint for --method dire: a file or a registered name.")


INTERRUPTED = 130  # the shell's exit status for a command stopped by SIGINT (128 + 2)


UNCERTAIN = typer.Option(None, "--uncertain", metavar="LOW:HIGH", help="Scores from LOW up to HIGH are UNCERTAIN (FAKE from HIGH, REAL below LOW); off by default.")


SEGMENT_GAP = typer.Option(None, "--segment-gap", min=0.0, help="Merge suspicious segments less than this many seconds apart (default: the config's segment_gap_s, 0).")


TRUST_ANCHORS = typer.Option(None, "--trust-anchors", help="PEM file of the certificate authorities whose C2PA signers you trust (default: none, so no signer is 'trusted').")


PROVENANCE = typer.Option(None, "--provenance/--no-provenance", metavar="", help="Read each file's C2PA manifest (default: on; needs the 'provenance' extra).")


SNAP = typer.Option(None, "--snap", help="'keyframes': move each uniform target to the nearest key frame (fast triage, times only as exact as the key-frame interval); 'none': exact frames (default).")


def stdout_console() -> Console:
    """The console for results on stdout: the terminal's width on a terminal; unwrapped rows when piped or
    redirected, so that `| grep` sees each input on one line and no digit is cut."""
    return Console() if sys.stdout.isatty() else Console(width=100_000, color_system=None)


def command_line() -> str:
    """This process's command line as a shell would take it again (the outputs record it beside the verdicts)."""
    return shlex.join(["streamdet", *sys.argv[1:]])


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error on stderr and exit with `code`."""
    err.print(f"[bold red]streamdet: error:[/] {escape(shown(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn streamdet's own errors into one line on stderr and exit code 2."""
    try:
        yield
    except StreamdetError as exc:
        fail(str(exc))


def warn(message: str) -> None:
    """Print a one-line warning on stderr (an input that was skipped, and why)."""
    err.print(f"streamdet: {shown(message)}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def download_progress(label: str) -> weights.Progress:
    """A progress bar on stderr for one download, as a `(done, total)` callback."""
    bar = Progress(TextColumn(f"downloading {label}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err, transient=True)
    task = None

    def update(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done)
        if total is not None and done >= total:
            bar.stop()

    return update


def count_progress(label: str, quiet: bool) -> tuple[Progress, Callable[[int, int], None]]:
    """A progress bar on stderr counting items (hidden when quiet or not a terminal), and its `(done, total)` callback."""
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True, disable=quiet or not err.is_terminal)
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def band_option(text: str | None) -> list[float] | None:
    """`--uncertain LOW:HIGH` as [low, high], or a one-line error."""
    if text is None:
        return None
    try:
        return list(parse_band(text))
    except ValueError as exc:
        fail(str(exc))


def sampling_options(frames: int | None, every: int | None, fps: float | None, keyframes: bool, all_frames: bool, snap: str | None = None) -> dict[str, tuple[str, object]]:
    """The sampling asked for on the command line (at most one mode, and `--snap`) as settings: {key: (flag, value)}."""
    asked = {"uniform": ("--frames", frames), "every": ("--every", every), "fps": ("--fps", fps), "keyframes": ("--keyframes", keyframes), "all": ("--all-frames", all_frames)}
    try:
        chosen = config_module.sampling_choice(asked)
    except ConfigError as exc:
        fail(str(exc))
    flag = next((name for mode, (name, value) in asked.items() if chosen.get("sampling.mode") == mode), "")
    return {"sampling.snap": ("--snap", snap), **{key: (flag, value) for key, value in chosen.items()}}


def model_options(adm: str | None, student: str | None, device: str | None, precision: str | None, batch: int | None, **more: tuple[str, object]) -> dict[str, tuple[str, object]]:
    """The options most commands share, as settings: {key: (flag, value)}."""
    return {
        "weights.adm": ("--adm", adm), "weights.student": ("--student", student), "device": ("--device", device),
        "precision": ("--precision", precision), "batch": ("--batch", batch), **more,
    }


def settings_from(config: str | None, options: dict[str, tuple[str, object]]) -> Config:
    """The run's one settings object: defaults < the config < the options given ({key: (flag, value)}; None = not given)."""
    given = {key: (flag, value) for key, (flag, value) in options.items() if value is not None}
    return config_module.load_config(config, {key: value for key, (_, value) in given.items()}, {key: flag for key, (flag, _) in given.items()})


def checked_outputs(*paths: Path | None) -> None:
    """Refuse, before any work, output paths that cannot be written (one line, exit 2)."""
    for path in paths:
        if path is not None:
            check_writable(path)


def output_format(json_: bool, jsonl: bool, csv_: bool, out: Path | None) -> str:
    """The output format from the flags, or from the extension of `--out`, else the table."""
    chosen = [name for name, on in [("json", json_), ("jsonl", jsonl), ("csv", csv_)] if on]
    if len(chosen) > 1:
        fail(f"--{' and --'.join(chosen)}: choose one output format")
    if chosen:
        return chosen[0]
    if out is not None and out.suffix.lower().lstrip(".") in report.FORMATS:
        return out.suffix.lower().lstrip(".")
    return "table"


def load_engine(cfg: Config, quiet: bool) -> Engine:
    """The run's engine (download progress and the warm-up time on stderr unless quiet)."""
    from ..engine import Engine

    engine = Engine.load(cfg, progress=None if quiet else download_progress)
    warmup = engine.scorer.describe().get("warmup_s")
    if warmup is not None and not quiet:
        err.print(f"streamdet: {cfg.backend} warm-up took {warmup:.1f} s", highlight=False)
    return engine
