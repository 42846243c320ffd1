"""The `streamdet` command: thin wrappers that parse options, call the library and print."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from .aggregate import parse_band
from .allocator import reuse_frame_buffers
from .errors import OneLineFormatter, StreamdetError, shown
from .files import check_writable, write_text
from .version import __version__


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

if TYPE_CHECKING:
    from .config import Config
    from .engine import Engine
    from .results import FileResult

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find diffusion- and GAN-made frames in videos and streams.")
weights_app = typer.Typer(no_args_is_help=True, help="The official checkpoints: list, download, locate.")
app.add_typer(weights_app, name="weights")
compress_app = typer.Typer(no_args_is_help=True, help="Smaller students: prune, svd or quantize one, then fine-tune it against the original.")
app.add_typer(compress_app, name="compress")
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


def interrupted_result(path: str, kind: str) -> FileResult:
    """The result of an input that Ctrl-C stopped before it was finished: an error, never a partial verdict."""
    from .results import FileResult

    return FileResult(path, kind, status="error", error=f"{path}: interrupted (Ctrl-C before this input was finished)")


def stdout_console() -> Console:
    """The console for results on stdout: the terminal's width on a terminal; unwrapped rows when piped or
    redirected, so that `| grep` sees each input on one line and no digit is cut."""
    return Console() if sys.stdout.isatty() else Console(width=100_000, color_system=None)


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


UNCERTAIN = typer.Option(None, "--uncertain", metavar="LOW:HIGH", help="Scores from LOW up to HIGH are UNCERTAIN (FAKE from HIGH, REAL below LOW); off by default.")
SEGMENT_GAP = typer.Option(None, "--segment-gap", min=0.0, help="Merge suspicious segments less than this many seconds apart (default: the config's segment_gap_s, 0).")
TRUST_ANCHORS = typer.Option(None, "--trust-anchors", help="PEM file of the certificate authorities whose C2PA signers you trust (default: none, so no signer is 'trusted').")
PROVENANCE = typer.Option(None, "--provenance/--no-provenance", help="Read each file's C2PA manifest (default: on; needs the 'provenance' extra).")


def band_option(text: str | None) -> list[float] | None:
    """`--uncertain LOW:HIGH` as [low, high], or a one-line error."""
    if text is None:
        return None
    try:
        return list(parse_band(text))
    except ValueError as exc:
        fail(str(exc))


SNAP = typer.Option(None, "--snap", help="'keyframes': move each uniform target to the nearest key frame (fast triage, times only as exact as the key-frame interval); 'none': exact frames (default).")


def sampling_options(frames: int | None, every: int | None, fps: float | None, keyframes: bool, all_frames: bool, snap: str | None = None) -> dict[str, tuple[str, object]]:
    """The sampling asked for on the command line (at most one mode, and `--snap`) as settings: {key: (flag, value)}."""
    chosen = [(name, key, value) for name, key, value in [
        ("--frames", "uniform", frames), ("--every", "every", every), ("--fps", "fps", fps),
        ("--keyframes", "keyframes", keyframes or None), ("--all-frames", "all", all_frames or None),
    ] if value is not None]
    if len(chosen) > 1:
        fail(f"{' and '.join(name for name, _, _ in chosen)}: choose one frame sampling option")
    out: dict[str, tuple[str, object]] = {"sampling.snap": ("--snap", snap)}
    if chosen:
        name, mode, value = chosen[0]
        out["sampling.mode"] = (name, mode)
        if mode in ("uniform", "every", "fps"):
            out[f"sampling.{ {'uniform': 'frames'}.get(mode, mode)}"] = (name, value)
    return out


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


def print_version(on: bool) -> None:
    """`--version`: print and exit before any command is needed."""
    if on:
        typer.echo(f"streamdet {__version__}")
        raise typer.Exit(0)


def load_engine(cfg: Config, quiet: bool) -> Engine:
    """The run's engine (download progress and the warm-up time on stderr unless quiet)."""
    from .engine import Engine

    engine = Engine.load(cfg, progress=None if quiet else download_progress)
    warmup = engine.scorer.describe().get("warmup_s")
    if warmup is not None and not quiet:
        err.print(f"streamdet: {cfg.backend} warm-up took {warmup:.1f} s", highlight=False)
    return engine


def model_options(adm: str | None, student: str | None, device: str | None, precision: str | None, batch: int | None, **more: tuple[str, object]) -> dict[str, tuple[str, object]]:
    """The options most commands share, as settings: {key: (flag, value)}."""
    return {
        "weights.adm": ("--adm", adm), "weights.student": ("--student", student), "device": ("--device", device),
        "precision": ("--precision", precision), "batch": ("--batch", batch), **more,
    }


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="", help="Log what streamdet is doing."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=print_version, metavar="", help="Print the version and exit."),
) -> None:
    logging.basicConfig(format="streamdet: %(levelname)s: %(message)s", level=logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter("streamdet: %(levelname)s: %(message)s"))
    reuse_frame_buffers()
    if not verbose:
        quiet_libraries()


def quiet_libraries() -> None:
    """Keep the libraries' own warnings (torch's CUDA_HOME notice, guided-diffusion's FutureWarnings, OpenCV's
    `[ WARN:0@…]` lines for damaged images) off stderr: users see streamdet's messages; --verbose shows all."""
    warnings.simplefilter("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)
    os.environ.setdefault("TORCH_LOGS", "-torch")  # torch, imported later, resets its loggers from this on import
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # read when OpenCV is first imported, which the CLI defers


@app.command()
def scan(
    paths: List[str] = typer.Argument(..., help="Video files, images and folders (searched recursively)."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Frames per model call (default: the config's batch, 16)."),
    backend: Optional[str] = BACKEND,
    engines: Optional[Path] = ENGINES,
    student_precision: Optional[str] = STUDENT_PRECISION,
    cascade: Optional[Path] = CASCADE,
    triage: Optional[float] = TRIAGE,
    method: Optional[str] = typer.Option(None, help="distildire (default), dire (slower; DDIM reconstruction error), or both (DistilDIRE's verdict, DIRE's beside it as a second opinion)."),
    dire: Optional[str] = DIRE,
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="P(fake) at which a file is FAKE (default: the config's threshold, 0.5)."),
    frames: Optional[int] = typer.Option(None, min=1, help="Sample N frames spread over each video (default: the config's sampling, 16 frames in the default config)."),
    every: Optional[int] = typer.Option(None, min=1, help="Sample every Nth frame."),
    fps: Optional[float] = typer.Option(None, min=0.001, help="Sample this many frames per second of video."),
    keyframes: bool = typer.Option(False, "--keyframes", metavar="", help="Sample key frames only (fast: no other frame is decoded)."),
    all_frames: bool = typer.Option(False, "--all-frames", metavar="", help="Score every frame."),
    snap: Optional[str] = SNAP,
    decode_workers: Optional[int] = typer.Option(None, "--decode-workers", min=1, help="Files decoded at once (default: one per available core; spare cores decode GOPs of a file in parallel)."),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="cpu (default); nvdec: NVIDIA hardware decoding straight into GPU memory (needs torchcodec and a CUDA device; not yet run on a GPU); auto: nvdec for the files it can decode, else cpu."),
    json_: bool = typer.Option(False, "--json", metavar="", help="One JSON document with every input and its frame scores."),
    jsonl: bool = typer.Option(False, "--jsonl", metavar="", help="One JSON line per frame."),
    csv_: bool = typer.Option(False, "--csv", metavar="", help="One CSV row per frame."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the output to this file (format from the flag or the extension)."),
    uncertain: Optional[str] = UNCERTAIN,
    crops: Optional[str] = typer.Option(None, "--crops", help="Regions scored per frame: center (the published rule, default), cover (squares covering the whole frame, frame score = their max) or faces (each detected face)."),
    html: Optional[Path] = typer.Option(None, "--report", help="Also write a self-contained HTML report (timelines, most suspicious frames, settings) to this file."),
    explain_dir: Optional[Path] = typer.Option(None, "--explain", metavar="DIR", help="Explain every scored frame: Grad-CAM and eps heatmap PNGs into DIR, an explain entry per frame, heatmaps in the --report (one more noise and backward pass per frame; needs the 'explain' extra)."),
    segment_gap: Optional[float] = SEGMENT_GAP,
    trust_anchors: Optional[Path] = TRUST_ANCHORS,
    provenance: Optional[bool] = PROVENANCE,
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
) -> None:
    """Scan videos and images; exit 0 if all are REAL (or UNCERTAIN), 1 if any is FAKE, 2 if any could not be read, 130 on Ctrl-C."""
    from .results import FileResult

    fmt = output_format(json_, jsonl, csv_, out)
    with user_errors():
        cfg = settings_from(config, {
            **model_options(adm, student, device, precision, batch), **sampling_options(frames, every, fps, keyframes, all_frames, snap),
            "backend": ("--backend", backend), "engines": ("--engines", engines and str(engines)), "student_precision": ("--student-precision", student_precision),
            "cascade.lite": ("--cascade", cascade and str(cascade)), "cascade.triage": ("--triage", triage), "method": ("--method", method),
            "weights.dire": ("--dire", dire), "threshold": ("--threshold", threshold), "uncertain": ("--uncertain", band_option(uncertain)),
            "crops": ("--crops", crops), "decoder": ("--decoder", decoder), "decode_workers": ("--decode-workers", decode_workers),
            "segment_gap_s": ("--segment-gap", segment_gap), "trust_anchors": ("--trust-anchors", trust_anchors and str(trust_anchors)),
            "provenance": ("--provenance", provenance),
        })
        checked_outputs(out, html)
        if explain_dir is not None and explain_dir.exists() and not explain_dir.is_dir():
            fail(f"--explain {explain_dir}: not a folder")
        inputs = check_inputs(paths)
        try:
            engine = load_engine(cfg, quiet)
        except KeyboardInterrupt:
            fail("interrupted before scanning started; nothing written", INTERRUPTED)
        heatmaps = None
        if explain_dir is not None:
            from .report.heatmaps import Heatmaps

            heatmaps = Heatmaps(engine.scorer, explain_dir)
        planned = planned_frames(inputs, cfg)
        if not quiet:
            announce(engine, inputs, planned)
        show = not quiet and err.is_terminal
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=err, transient=True, disable=not show,
        )
        counts = {"files": 0, "frames": 0}
        finished: dict[str, FileResult] = {}
        thumbnails = None
        if html is not None:
            from .report.html import Thumbnails

            thumbnails = Thumbnails()
        with progress:
            task = progress.add_task("scanning", total=planned)

            def tick() -> None:
                total = None if planned is None else max(planned, counts["frames"])
                progress.update(task, completed=counts["frames"], total=total, description=f"scanning: {counts['files']}/{len(inputs)} inputs")

            def on_result(result: FileResult) -> None:
                finished[result.path] = result
                counts["files"] += 1
                logging.getLogger("streamdet").info("finished %s (%s)", result.path, result.verdict or result.status)
                tick()

            def on_frames(n: int) -> None:
                counts["frames"] += n
                tick()

            interrupted = False
            try:
                hooks = [hook.add for hook in (thumbnails, heatmaps) if hook is not None]
                results = engine.scan(paths, on_result=on_result, on_frames=on_frames, on_scored=(lambda frame, score: [add(frame, score) for add in hooks]) if hooks else None)
            except KeyboardInterrupt:
                interrupted = True
                results = [finished.get(item.path) or interrupted_result(item.path, item.kind) for item in inputs]
            except Exception as exc:  # a bug must not lose the finished inputs: they are written, the others are errors
                crash = f"scan stopped by an unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                results = [finished.get(item.path) or FileResult(item.path, item.kind, status="error", error=f"{item.path}: {crash}") for item in inputs]
        info = engine.run_info()
        if info.cascade is not None and not quiet:
            c = info.cascade
            err.print(f"streamdet: cascade: {c['escalated']} of {c['frames']} frames ({c['escalated'] / max(1, c['frames']):.0%}) went to the full pipeline", highlight=False)
        write_results(results, fmt, info.to_dict(), out, html, thumbnails, heatmaps)
    for r in results:
        if r.status == "error":
            warn(r.error or r.path)
    if interrupted:
        done = sum(r.path in finished for r in results)
        err.print(f"[bold red]streamdet: interrupted:[/] {done} of {len(results)} inputs finished; the others are reported as interrupted", highlight=False, soft_wrap=True)
        raise typer.Exit(INTERRUPTED)
    raise typer.Exit(report.exit_code(results))


def check_inputs(paths: List[str]) -> list:
    """The inputs to scan; a command line with nothing to scan (every input missing or unreadable) is refused
    before any model loads (one line, exit 2)."""
    from .errors import MediaError
    from .video import expand_inputs

    inputs = expand_inputs(paths)
    if not inputs:
        raise MediaError(f"{paths[0]}: no images or videos found" + (f" (in any of the {len(paths)} inputs)" if len(paths) > 1 else ""))
    errors = [item for item in inputs if item.kind == "error"]
    if len(errors) == len(inputs):
        raise MediaError((errors[0].error or errors[0].path) + (f" (and {len(errors) - 1} more inputs cannot be read)" if len(errors) > 1 else ""))
    return inputs


def planned_frames(inputs: list, cfg: Config) -> int | None:
    """About how many frames a scan scores: an image one, a video its uniform count (fewer if it is shorter);
    None for the other sampling modes, whose counts need each video's length."""
    if cfg.sampling.mode != "uniform" and any(item.kind == "video" for item in inputs):
        return None
    return sum(1 if item.kind == "image" else cfg.sampling.frames for item in inputs if item.kind != "error")


def announce(engine: Engine, inputs: list, planned: int | None) -> None:
    """One line before the work starts: what runs where, and on a CPU with a full-size ADM what that costs."""
    about = engine.scorer.describe()
    media = sum(item.kind != "error" for item in inputs)
    count = f"about {planned} frames" if planned is not None else "their sampled frames"
    line = f"streamdet: scanning {media} inputs, {count}, with {'+'.join(about['methods'])} on {about['device']} ({about['precision']})"
    if about["device"] == "cpu" and engine.settings.adm.image_size >= 256:
        line += "; on a CPU the full-size ADM takes about 10-40 s a frame: fewer --frames, --cascade or a GPU help (docs/scan.md, 'On a CPU')"
    err.print(line, markup=False, highlight=False, soft_wrap=True)

def write_results(results: list[FileResult], fmt: str, info: dict, out: Path | None, html: Path | None, thumbnails: object | None, heatmaps: object | None = None) -> None:
    """The report (with --report), then the results in `fmt` to --out or stdout (the table on a terminal)."""
    if html is not None:
        from .report.html import to_html

        write_text(html, to_html(results, info, thumbnails, heatmaps), fsync=True)
    if out is not None:
        write_text(out, report.render(results, fmt, info), fsync=True)
    elif fmt == "table":
        stdout_console().print(report.table(results, info["threshold"], info.get("uncertain")))
    else:
        sys.stdout.write(report.render(results, fmt, info))


@app.command("batch")
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
    from .cluster import gather_sources, require_ray, run_batch
    from .results import FileResult

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
    """Keep Ray's own log lines (token-auth notices, actor restarts) off stderr unless --verbose."""
    os.environ.setdefault("RAY_LOG_TO_STDERR", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


@app.command("calibrate")
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
    from .calibrate import calibrate, write_config

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


@app.command("watch")
def watch_command(
    urls: List[str] = typer.Argument(..., help="rtsp://, rtmp://, http(s):// (HLS, MJPEG) URLs, capture devices (/dev/video0), or video files with --realtime."),
    config: Optional[str] = CONFIG,
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Most frames per model call (frames of all streams share calls)."),
    backend: Optional[str] = BACKEND,
    engines: Optional[Path] = ENGINES,
    student_precision: Optional[str] = STUDENT_PRECISION,
    cascade: Optional[Path] = CASCADE,
    triage: Optional[float] = TRIAGE,
    method: Optional[str] = typer.Option(None, help="distildire (default) or dire (DDIM reconstruction error: about 40 times the ADM work per frame)."),
    dire: Optional[str] = DIRE,
    fps: Optional[float] = typer.Option(None, help="Frames analysed per second of each stream (default 2)."),
    window: Optional[float] = typer.Option(None, help="Sliding window length, seconds of stream time (default 10)."),
    raise_at: Optional[float] = typer.Option(None, help="Raise an alert when the window score reaches this (default: the config's threshold; HIGH with --uncertain)."),
    clear_at: Optional[float] = typer.Option(None, help="Clear the alert when the window score falls below this (default: raise-at minus 0.15; LOW with --uncertain)."),
    min_frames: Optional[int] = typer.Option(None, min=1, help="Frames a window needs before it is scored (default: half a full window, at least 3)."),
    events: Optional[Path] = typer.Option(None, "--events", help="Append the JSON-line events to this file instead of stdout."),
    webhook: Optional[str] = typer.Option(None, help="POST every alert event as JSON to this http(s) URL."),
    status_every: Optional[float] = typer.Option(None, help="Seconds between status events and status lines on stderr (default 30)."),
    metrics_port: Optional[int] = typer.Option(None, min=0, max=65535, help="Serve Prometheus text metrics at http://127.0.0.1:PORT/metrics."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM)."),
    realtime: bool = typer.Option(False, "--realtime", metavar="", help="Play inputs at their own speed (required for local video files)."),
    rtsp_transport: Optional[str] = typer.Option(None, "--rtsp-transport", help="RTSP transport: tcp (default) or udp."),
    timeout: Optional[float] = typer.Option(None, help="Seconds without an answer or data before a stream counts as down (default 10)."),
    max_backoff: Optional[float] = typer.Option(None, help="Longest pause between reconnection attempts, seconds (default 60)."),
    log_frames: bool = typer.Option(False, "--log-frames", metavar="", help="Also write a `frame` event for every scored frame."),
    uncertain: Optional[str] = UNCERTAIN,
    crops: Optional[str] = typer.Option(None, "--crops", help="Regions scored per frame: center (default), cover or faces, as for scan; a frame's score is its best region's."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No status lines and no download progress on stderr."),
) -> None:
    """Monitor live streams: alerts over a sliding window and health, as JSON-line events, until stopped."""
    from .live import WatchSettings, parse_targets, run_watch

    with user_errors():
        if method == "both":
            fail("--method both: watch runs one method (distildire or dire); use scan --method both for a second opinion")
        cfg = settings_from(config, {
            **model_options(adm, student, device, precision, batch), "backend": ("--backend", backend), "engines": ("--engines", engines and str(engines)),
            "student_precision": ("--student-precision", student_precision), "cascade.lite": ("--cascade", cascade and str(cascade)),
            "cascade.triage": ("--triage", triage), "method": ("--method", method), "weights.dire": ("--dire", dire),
            "uncertain": ("--uncertain", band_option(uncertain)), "crops": ("--crops", crops), "watch.fps": ("--fps", fps),
            "watch.window": ("--window", window), "watch.raise_at": ("--raise-at", raise_at), "watch.clear_at": ("--clear-at", clear_at),
            "watch.min_frames": ("--min-frames", min_frames), "watch.status_every": ("--status-every", status_every),
            "watch.metrics_port": ("--metrics-port", metrics_port), "watch.duration": ("--duration", duration),
            "watch.realtime": ("--realtime", realtime or None), "watch.rtsp_transport": ("--rtsp-transport", rtsp_transport),
            "watch.timeout": ("--timeout", timeout), "watch.max_backoff": ("--max-backoff", max_backoff), "watch.log_frames": ("--log-frames", log_frames or None),
        })
        if cfg.method == "both":
            fail(f"{cfg.source}: method both: watch runs one method (distildire or dire)")
        settings = WatchSettings.from_config(cfg)
        targets = parse_targets(urls, cfg.watch.realtime)
        checked_outputs(events)
        engine = load_engine(cfg, quiet)
        run_watch(engine, targets, settings, events, webhook, None if quiet else lambda line: print(f"streamdet watch: {line}", file=sys.stderr, flush=True))


@app.command("serve")
def serve_command(
    config: Optional[str] = CONFIG,
    host: Optional[str] = typer.Option(None, help="Address to listen on (default 127.0.0.1; any other needs --tokens)."),
    port: Optional[int] = typer.Option(None, min=0, max=65535, help="Port (default 8000; 0 picks a free one)."),
    tokens: Optional[Path] = typer.Option(None, "--tokens", help="File of API tokens, one per line (else STREAMDET_TOKENS)."),
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Most frames per model call (frames of all jobs share calls)."),
) -> None:
    """Serve scans over HTTP (needs the serve extra): POST /v1/scans, poll, read the result and report; a page at /. See docs/serve.md."""
    from .service import serve

    with user_errors():
        serve(settings_from(config, {**model_options(adm, student, device, precision, batch), "serve.host": ("--host", host), "serve.port": ("--port", port)}), tokens)


@app.command("export")
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
    from .export.exporter import export_models
    from .export.metadata import BatchRange
    from .runtime.artifacts import metadata_path

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


def count_progress(label: str, quiet: bool) -> tuple[Progress, Callable[[int, int], None]]:
    """A progress bar on stderr counting items (hidden when quiet or not a terminal), and its `(done, total)` callback."""
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True, disable=quiet or not err.is_terminal)
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def warn(message: str) -> None:
    """Print a one-line warning on stderr (an input that was skipped, and why)."""
    err.print(f"streamdet: {shown(message)}", style="yellow", markup=False, highlight=False, soft_wrap=True)


@app.command("frames")
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
    from .train import build_frames
    from .video import Sampling

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


@app.command("prepare")
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
    from .train import prepare

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


@app.command("train")
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
    from .train import train

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


@app.command("eval")
def eval_command(
    dataset: Path = typer.Argument(..., help="Frame dataset (real/ and fake/<generator>/)."),
    student: Optional[str] = typer.Option(None, help="Student checkpoint: a file (e.g. a run's best.pth) or a registered name (default: the config's)."),
    config: Optional[str] = CONFIG,
    method: str = typer.Option("distildire", help="distildire, or dire: the DIRE classifier (--dire) reads each image's DIRE (cached by prepare, else computed)."),
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

    from .train import evaluate
    from .train.tables import render, render_robustness

    with user_errors():
        cfg = settings_from(config, {
            **model_options(adm, student, device, precision, batch), "backend": ("--backend", backend), "engines": ("--engines", engines and str(engines)),
            "student_precision": ("--student-precision", student_precision), "threshold": ("--threshold", threshold), "weights.dire": ("--dire", dire),
        })
        checked_outputs(out, plot)
        if degrade and method != "distildire":
            fail(f"--degrade evaluates the distildire method, not {method}")
        if plot is not None and not degrade:
            fail(f"{plot}: --plot draws the --degrade results; give at least one --degrade SPEC")
        if degrade:
            from .train.plot import plot_robustness
            from .train.robustness import degradations, robustness

            degradations(degrade)  # a bad SPEC fails before any model is loaded
            bar, update = count_progress("degradations", quiet)
            with bar:
                result = robustness(
                    dataset, cfg, cfg.weights.student, degrade, split=split, backend=cfg.backend, engines=cfg.engines,
                    student_precision=cfg.student_precision, progress=update,
                )
            if plot is not None:
                plot_robustness(result, plot)
        else:
            bar, update = count_progress("computing DIRE" if method == "dire" else "computing eps", quiet)
            with bar:
                result = evaluate(
                    dataset, cfg, cfg.weights.student, cache_dir=cache, split=split, progress=update, on_error=warn,
                    backend=cfg.backend, engines=cfg.engines, student_precision=cfg.student_precision, method=method, dire=cfg.weights.dire,
                )
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


@app.command("distill-lite")
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
    from .train.lite import distill_lite

    with user_errors():
        cfg = settings_from(config, {"device": ("--device", device), "weights.adm": ("--adm", adm), "train.batch": ("--batch", batch), "train.lr": ("--lr", lr)})
        checked_outputs(out)
        result = distill_lite(
            dataset, cfg, teacher_student, out, adm=adm, backbone=backbone, epochs=epochs, kd_weight=kd_weight,
            on_epoch=None if quiet else lambda epoch, loss: err.print(f"epoch {epoch + 1}: loss {loss:.4f}", highlight=False),
        )
    typer.echo(
        f"{result.path}: {result.frames} training frames; on {result.val_frames or result.frames} "
        f"{'held-out' if result.val_frames else 'training'} frames mean |P_lite - P_full| {result.mean_abs_dp:.3f}, "
        f"same side of the threshold {result.agreement:.1%}"
    )


# `streamdet compress …`: options shared by its three commands.
COMPRESS_DATASET = typer.Option(..., "--dataset", "-d", help="Prepared frame dataset (eps cached): fine-tune on its train split, compare on its val split.")
COMPRESS_OUT = typer.Option(None, "--out", "-o", help="Compressed checkpoint to write (default: STUDENT-METHOD.pth in the current folder).")
COMPRESS_STEPS = typer.Option(None, min=0, help="Fine-tune steps (distillation from the original student's P; default: compress.steps, 50).")
COMPRESS_BATCH = typer.Option(None, min=1, help="Images per fine-tune step (default: compress.batch, 8).")
COMPRESS_LR = typer.Option(None, min=0.0, help="Adam learning rate of the fine-tune (default: compress.lr, 1e-5).")
COMPRESS_LABELS = typer.Option(False, "--labels", metavar="", help="Fine-tune with BCE against the labels too (the student then drifts from the original's scores).")
COMPRESS_CACHE = typer.Option(None, help="Cache folder given to prepare (default: DATASET/cache).")
COMPRESS_QUIET = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar.")


def run_compress(method: str, student: str, dataset: Path, out: Optional[Path], config: Optional[str], cache: Optional[Path], quiet: bool, **settings: object) -> None:
    """Run one compression (of a student, or the lite detector's quantization) and print the before/after table."""
    from .compress import Settings, compress, is_lite_checkpoint, quantize_lite

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
    typer.echo(f"max |ΔP| against the original: {result.max_abs_dp:.4f}")


@compress_app.command("prune")
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


@compress_app.command("svd")
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


@compress_app.command("quantize")
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


@weights_app.command("list")
def weights_list() -> None:
    """The registered checkpoints, whether each is cached, and where."""
    out = Table(title=f"checkpoints (cache: {weights.home() / 'weights'})", title_justify="left")
    for column in ("name", "kind", "size", "cached", "description"):
        out.add_column(column, no_wrap=column == "name")
    for w in weights.REGISTRY.values():
        out.add_row(w.name, w.kind, f"{w.size_mb} MB", cached_state(w), w.description)
    stdout_console().print(out)


def cached_state(weight: weights.WeightFile) -> str:
    """'no', or the state of the cached copy: verified, no published checksum, or why it cannot be used."""
    path = weights.cached_path(weight)
    if not path.is_file():
        return "no (manual)" if weight.manual else "no"
    try:
        return f"yes ({weights.verify(weight, path)})"
    except StreamdetError as exc:
        return f"[red]unusable[/]: {escape(str(exc))}"


@weights_app.command("download")
def weights_download(names: List[str] = typer.Argument(None, help="Names from `streamdet weights list` (default: all).")) -> None:
    """Download checkpoints into the cache (skipping those already there)."""
    with user_errors():
        for path in weights.fetch_all(list(names or []), lambda w: download_progress(w.name)):
            typer.echo(str(path))


@weights_app.command("path")
def weights_path(name: str = typer.Argument(..., help="A name from `streamdet weights list`.")) -> None:
    """Print where a checkpoint is (or will be) cached; exit 1 if it is not there yet."""
    weight = weights.REGISTRY.get(name)
    if weight is None:
        fail(f"{name}: not a registered checkpoint (registered: {', '.join(weights.REGISTRY)})")
    path = weights.cached_path(weight)
    typer.echo(str(path))
    raise typer.Exit(0 if path.is_file() else 1)
