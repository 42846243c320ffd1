"""`streamdet scan`: videos, images and folders to verdicts, as a table, JSON, JSONL, CSV or an HTML report."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..files import write_text
from .common import ADM, BACKEND, CASCADE, CONFIG, DEVICE, DIRE, ENGINES, INTERRUPTED, PRECISION, PROVENANCE, SEGMENT_GAP, SNAP, STUDENT, STUDENT_PRECISION, TRIAGE, TRUST_ANCHORS, UNCERTAIN, band_option, checked_outputs, command_line, err, fail, load_engine, model_options, output_format, report, sampling_options, settings_from, stdout_console, user_errors, warn

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Engine
    from ..results import FileResult


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
        evidence = Evidence(engine, html, explain_dir)
        planned = planned_frames(inputs, cfg)
        if not quiet:
            announce(engine, inputs, planned)
        results, stopped = scan_with_progress(engine, paths, inputs, planned, evidence, show=not quiet and err.is_terminal)
        info = engine.run_info(command_line())
        if info.cascade is not None and not quiet:
            c = info.cascade
            err.print(f"streamdet: cascade: {c['escalated']} of {c['frames']} frames ({c['escalated'] / max(1, c['frames']):.0%}) went to the full pipeline", highlight=False)
        write_results(results, fmt, info.to_dict(), out, html, evidence.thumbnails, evidence.heatmaps)
    for r in results:
        if r.status == "error":
            warn(r.error or r.path)
    if stopped is not None:
        err.print(f"[bold red]streamdet: interrupted:[/] {stopped} of {len(results)} inputs finished; the others are reported as interrupted", highlight=False, soft_wrap=True)
        raise typer.Exit(INTERRUPTED)
    raise typer.Exit(report.exit_code(results))


class Evidence:
    """What the report and --explain collect while frames are scored: thumbnails and Grad-CAM heatmaps."""

    def __init__(self, engine: Engine, html: Path | None, explain_dir: Path | None) -> None:
        self.thumbnails = self.heatmaps = None
        if html is not None:
            from ..report.html import Thumbnails

            self.thumbnails = Thumbnails()
        if explain_dir is not None:
            from ..report.heatmaps import Heatmaps

            self.heatmaps = Heatmaps(engine.scorer, explain_dir)
        self.hooks = [hook.add for hook in (self.thumbnails, self.heatmaps) if hook is not None]

    def on_scored(self) -> Callable[[Any, Any], None] | None:
        """The engine's per-frame callback, or None when nothing is collected."""
        if not self.hooks:
            return None
        return lambda frame, score: [add(frame, score) for add in self.hooks]


def scan_with_progress(engine: Engine, paths: List[str], inputs: list, planned: int | None, evidence: Evidence, show: bool) -> tuple[list[FileResult], int | None]:
    """The engine's scan under a progress bar of frames scored (and inputs finished) with an ETA; on Ctrl-C or a
    crash the finished inputs are kept and the others become errors. Returns the results and, where Ctrl-C
    stopped it, how many inputs had finished."""
    from ..results import FileResult

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, transient=True, disable=not show,
    )
    counts = {"files": 0, "frames": 0}
    finished: dict[str, FileResult] = {}
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

        try:
            return engine.scan(paths, on_result=on_result, on_frames=on_frames, on_scored=evidence.on_scored()), None
        except KeyboardInterrupt:
            return [finished.get(item.path) or interrupted_result(item.path, item.kind) for item in inputs], len(finished)
        except Exception as exc:  # a bug must not lose the finished inputs: they are written, the others are errors
            crash = f"scan stopped by an unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            return [finished.get(item.path) or FileResult(item.path, item.kind, status="error", error=f"{item.path}: {crash}") for item in inputs], None


def check_inputs(paths: List[str]) -> list:
    """The inputs to scan; a command line with nothing to scan (every input missing or unreadable) is refused
    before any model loads (one line, exit 2)."""
    from ..errors import MediaError
    from ..video import expand_inputs

    inputs = expand_inputs(paths)
    if not inputs:
        raise MediaError(f"{paths[0]}: no images or videos found" + (f" (in any of the {len(paths)} inputs)" if len(paths) > 1 else ""))
    errors = [item for item in inputs if item.kind == "error"]
    if len(errors) == len(inputs):
        raise MediaError((errors[0].error or errors[0].path) + (f" (and {len(errors) - 1} more inputs cannot be read)" if len(errors) > 1 else ""))
    return inputs


def planned_frames(inputs: list, cfg: Config) -> int | None:
    """About how many frames a scan scores: an image one, a video what its sampling mode takes (fewer if it is
    shorter); None where that count needs each video's length."""
    from ..video.sampling import expected_frames

    counts = [1 if item.kind == "image" else expected_frames(cfg.sampling, None, None) for item in inputs if item.kind != "error"]
    return None if None in counts else sum(counts)


def announce(engine: Engine, inputs: list, planned: int | None) -> None:
    """One line before the work starts: what runs where, and on a CPU with a full-size ADM what that costs."""
    about = engine.scorer.describe()
    media = sum(item.kind != "error" for item in inputs)
    count = f"about {planned} frames" if planned is not None else "their sampled frames"
    line = f"streamdet: scanning {media} inputs, {count}, with {'+'.join(about['methods'])} on {about['device']} ({about['precision']})"
    if about["device"] == "cpu" and engine.settings.adm.image_size >= 256:
        line += f"; {cpu_estimate(planned)}: fewer --frames, int8, --cascade or a GPU help (docs/cheaper.md)"
    err.print(line, markup=False, highlight=False, soft_wrap=True)


CPU_SECONDS_PER_FRAME = (10.0, 40.0)  # the full-size ADM + student per frame on CPUs we measured (bench_cpu: 28.7 s on one AVX2 core)


def cpu_estimate(planned: int | None) -> str:
    """How long `planned` frames take with the full-size models on a CPU, as a range (a frame's where unknown)."""
    low, high = CPU_SECONDS_PER_FRAME
    if planned is None:
        return f"on a CPU each frame takes about {low:.0f}-{high:.0f} s"
    return f"on a CPU that is about {_duration(low * planned)} to {_duration(high * planned)} ({low:.0f}-{high:.0f} s a frame)"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def write_results(results: list[FileResult], fmt: str, info: dict, out: Path | None, html: Path | None, thumbnails: object | None, heatmaps: object | None = None) -> None:
    """The report (with --report), then the results in `fmt` to --out or stdout (the table on a terminal)."""
    if html is not None:
        from ..report.html import to_html

        write_text(html, to_html(results, info, thumbnails, heatmaps), fsync=True)
    if out is not None:
        write_text(out, report.render(results, fmt, info), fsync=True)
    elif fmt == "table":
        stdout_console().print(report.table(results, info["threshold"], info.get("uncertain")))
    else:
        sys.stdout.write(report.render(results, fmt, info))


def interrupted_result(path: str, kind: str) -> FileResult:
    """The result of an input that Ctrl-C stopped before it was finished: an error, never a partial verdict."""
    from ..results import FileResult

    return FileResult(path, kind, status="error", error=f"{path}: interrupted (Ctrl-C before this input was finished)")
