"""The report's settings table: a run's `RunInfo` (as its JSON dict) as rows a person reads, not raw JSON.

It says how verdicts were decided (thresholds, band, file score, sampling, regions, method), what ran them
(device, precision, backend, each checkpoint file with its sha256, the streamdet version), when (UTC) and the
command line. Fields it does not know are shown plainly, so a newer record still shows everything.
"""

from __future__ import annotations

import html
from pathlib import PurePath
from typing import Any

SAMPLING = {
    "uniform": lambda s: f"uniform, {s['frames']} frames",
    "every": lambda s: "every frame" if s["every"] == 1 else f"every {_ordinal(s['every'])} frame",
    "fps": lambda s: f"{s['fps']:g} frames per second",
    "keyframes": lambda s: "key frames only",
    "all": lambda s: "every frame",
}
CROPS = {"center": "center square (the published rule)", "cover": "squares covering the frame (frame score: their highest)", "faces": "each detected face"}
SHOWN_ELSEWHERE = {"config", "device", "precision", "backend", "method", "methods", "threshold", "top_fraction", "sampling", "crops", "segment_gap_s",
                   "uncertain", "student_precision", "warmup_s", "cascade", "version", "checkpoints", "time_utc", "command"}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sampling_text(sampling: dict[str, Any]) -> str:
    """A sampling dict (mode, frames, every, fps, snap) in words: "uniform, 16 frames", "every 5th frame"."""
    mode = sampling.get("mode", "uniform")
    text = SAMPLING[mode](sampling) if mode in SAMPLING else str(sampling)
    if sampling.get("snap") == "keyframes":
        text += ", each moved to its nearest key frame"
    return text


def _verdicts(info: dict[str, Any]) -> str:
    band = info.get("uncertain")
    if band:
        return f"FAKE at P(fake) ≥ {band[1]:g}, UNCERTAIN from {band[0]:g}, else REAL"
    return f"FAKE at P(fake) ≥ {info['threshold']:g}, else REAL"


def _checkpoint(entry: dict[str, Any]) -> str:
    name = html.escape(PurePath(str(entry.get("file"))).name or str(entry.get("file")))
    sha = entry.get("sha256")
    digest = f"sha256 <code>{html.escape(sha)}</code>" if sha else "sha256 unknown (no published checksum and no local copy)"
    return f'<span title="{html.escape(str(entry.get("file")))}">{name}</span>, {digest}'


def rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    """The run info as (label, HTML value) rows, in reading order."""
    out: list[tuple[str, str]] = []

    def add(label: str, text: str) -> None:
        out.append((label, html.escape(text)))

    add("verdicts", _verdicts(info))
    if "top_fraction" in info:
        add("file score", f"mean of the top {info['top_fraction']:.0%} of its frame scores")
    if "sampling" in info:
        add("sampling", sampling_text(info["sampling"]))
    if "crops" in info:
        add("regions", CROPS.get(info["crops"], info["crops"]))
    if "segment_gap_s" in info:
        gap = info["segment_gap_s"]
        add("segments", f"runs of flagged frames less than {gap:g} s apart merge into one" if gap > 0 else "each run of consecutive flagged frames (no merging)")
    if "method" in info:
        methods = info.get("methods") or [info["method"]]
        add("method", info["method"] + (f" ({' + '.join(methods)})" if len(methods) > 1 else ""))
    if "device" in info:
        student = info.get("student_precision")
        runs = f"{info['device']}, {info.get('precision')}" + (f" (student {student})" if student and student != info.get("precision") else "")
        add("runs on", f"{runs}, {info.get('backend')} backend")
    if info.get("warmup_s") is not None:
        add("warm-up", f"{info['warmup_s']:.1f} s (compiling the backend)")
    if info.get("cascade"):
        c = info["cascade"]
        add("cascade", f"lite model {PurePath(str(c.get('lite'))).name}, triage {c.get('triage')}: {c.get('escalated')} of {c.get('frames')} frames went to the full pipeline")
    labels = {"adm": "ADM", "student": "student", "dire": "DIRE classifier", "lite": "lite model"}
    out += [(labels.get(role, role), _checkpoint(entry)) for role, entry in (info.get("checkpoints") or {}).items()]
    if "config" in info:
        add("config", info["config"])
    if info.get("version"):
        add("streamdet", info["version"])
    if info.get("time_utc"):
        add("time", info["time_utc"].replace("T", " ").replace("Z", " UTC"))
    if info.get("command"):
        out.append(("command", f"<code>{html.escape(info['command'])}</code>"))
    for key, value in info.items():
        if key not in SHOWN_ELSEWHERE and value is not None:
            add(key, str(value))
    return out


def settings_table(info: dict[str, Any]) -> str:
    """The settings section's table."""
    body = "".join(f"<tr><th>{html.escape(label)}</th><td>{value}</td></tr>" for label, value in rows(info))
    return f'<table class="settings">{body}</table>'
