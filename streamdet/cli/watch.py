"""`streamdet watch`: live streams monitored over a sliding window."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from .common import ADM, BACKEND, CASCADE, CONFIG, DEVICE, DIRE, ENGINES, PRECISION, STUDENT, STUDENT_PRECISION, TRIAGE, UNCERTAIN, band_option, checked_outputs, fail, load_engine, model_options, settings_from, user_errors

if TYPE_CHECKING:
    pass


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
    from ..live import WatchSettings, parse_targets, run_watch

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
