"""Scan results → a table for people, and JSON / JSONL / CSV for machines.

The UNCERTAIN count, the frames' own verdicts and their crop boxes appear only when the scan used an
uncertain band or crops other than the center rule, so default outputs stay as they were.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..aggregate import FAKE, REAL, UNCERTAIN, verdict
from ..errors import shown
from ..results import FileResult

FORMATS = ("table", "json", "jsonl", "csv")
FRAME_COLUMNS = ("path", "index", "time", "score", "status", "error")


def exit_code(results: Iterable[FileResult]) -> int:
    """As virus scanners do: 2 if any input could not be read, else 1 if any is FAKE, else 0 (UNCERTAIN included)."""
    results = list(results)
    if any(r.status == "error" for r in results):
        return 2
    return 1 if any(r.verdict == FAKE for r in results) else 0


def summary(results: Sequence[FileResult], band: Sequence[float] | None = None) -> dict[str, int]:
    """Counts of inputs by outcome (UNCERTAIN counted where there is a band)."""
    counts = {
        "inputs": len(results),
        "fake": sum(r.verdict == FAKE for r in results),
        "real": sum(r.verdict == REAL for r in results),
        "errors": sum(r.status == "error" for r in results),
    }
    if band is not None:
        counts["uncertain"] = sum(r.verdict == UNCERTAIN for r in results)
    return counts


def to_json(results: Sequence[FileResult], settings: dict[str, Any]) -> str:
    """One JSON document: the settings used, a summary and every input with its frame scores."""
    doc = {"settings": settings, "summary": summary(results, settings.get("uncertain")), "inputs": [r.to_dict() for r in results]}
    return json.dumps(doc, indent=2) + "\n"


def frame_rows(results: Sequence[FileResult], settings: dict[str, Any] | None = None) -> Iterable[dict[str, Any]]:
    """One row per frame with its input's status and error (a frame of an input in error, e.g. with non-finite
    scores, is never `ok`); an input without frames that could not be read gets one row with its error.

    With a band in `settings`, each row has the frame's own verdict; with crops, the box that gave its score;
    with a cascade, the model that scored it; with several methods, `score_<method>` for each.
    """
    settings = settings or {}
    band = settings.get("uncertain")
    crops = settings.get("crops", "center") != "center"
    cascade = "cascade" in settings
    for r in results:
        if r.status == "error" and not r.frames:
            row = {"path": r.path, "index": None, "time": None, "score": None, "status": "error", "error": r.error}
            yield {**row, **({"verdict": None} if band else {}), **({"crop": None} if crops else {}), **({"scored_by": None} if cascade else {})}
        for f in r.frames:
            row = {"path": r.path, "index": f.index, "time": f.time, "score": f.score, "status": r.status, "error": r.error}
            if band:
                row["verdict"] = None if f.score is None else verdict(f.score, band=band)
            if crops:
                row["crop"] = None if f.crop is None else " ".join(str(v) for v in f.crop)
            if cascade:
                row["scored_by"] = f.scored_by
            row.update({f"score_{m}": v for m, v in f.scores.items()} if f.scores else {})
            yield row


def to_jsonl(results: Sequence[FileResult], settings: dict[str, Any] | None = None) -> str:
    """Per-frame rows as JSON lines."""
    return "".join(json.dumps(row) + "\n" for row in frame_rows(results, settings))


def to_csv(results: Sequence[FileResult], settings: dict[str, Any] | None = None) -> str:
    """Per-frame rows as CSV with a header (`verdict`, `crop` and `scored_by` columns where the scan used a band, crops or a cascade)."""
    settings = settings or {}
    columns = FRAME_COLUMNS + (("verdict",) if settings.get("uncertain") else ()) + (("crop",) if settings.get("crops", "center") != "center" else ())
    columns += ("scored_by",) if "cascade" in settings else ()
    columns += tuple(f"score_{m}" for m in next((list(r.methods) for r in results if r.methods), []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(frame_rows(results, settings))
    return buffer.getvalue()


STYLES = {FAKE: "bold red", UNCERTAIN: "bold yellow", REAL: "green"}


def table(results: Sequence[FileResult], threshold: float, band: Sequence[float] | None = None) -> Table:
    """A readable table: one line per input, errors and warnings in the last column.

    Names and messages are plain text (never rich markup), with control characters escaped (`errors.shown`).
    """
    rule = f"threshold {threshold:g}" if band is None else f"REAL < {band[0]:g} <= UNCERTAIN < {band[1]:g} <= FAKE"
    out = Table(title=f"streamdet scan ({rule})", title_justify="left")
    for name in ("input", "verdict", "score", "flagged", "time", "note"):
        out.add_column(name, justify="right" if name in ("score", "flagged", "time") else "left", overflow="fold")
    for r in results:
        if r.status == "error":
            out.add_row(Text(shown(r.path)), "[bold yellow]ERROR[/]", "", "", "", Text(shown(r.error or "")))
            continue
        style = STYLES[r.verdict]
        out.add_row(
            Text(shown(r.path)),
            f"[{style}]{r.verdict}[/]",
            f"{r.score:.3f}",
            f"{r.flagged}/{len(r.frames)}",
            f"{r.timings.get('total_s', 0.0):.1f}s",
            Text(shown("; ".join([*(f"{m} {v['score']:.3f} {v['verdict']}" for m, v in (r.methods or {}).items()), *([r.warning] if r.warning else [])]))),
        )
    return out


def render(results: Sequence[FileResult], fmt: str, settings: dict[str, Any]) -> str:
    """The scan output in `fmt` as text."""
    if fmt == "json":
        return to_json(results, settings)
    if fmt == "jsonl":
        return to_jsonl(results, settings)
    if fmt == "csv":
        return to_csv(results, settings)
    console = Console(file=io.StringIO(), width=120, force_terminal=False, color_system=None)
    console.print(table(results, settings["threshold"], settings.get("uncertain")))
    return console.file.getvalue()


class OneLineFormatter(logging.Formatter):
    """Log lines for people: the message part with control characters escaped (`errors.shown`), so a file name
    cannot break a line or reach the terminal as escape codes (a traceback under --verbose keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's naming)
        return shown(super().formatMessage(record))
