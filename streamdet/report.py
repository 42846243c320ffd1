"""Scan results → a table for people, and JSON / JSONL / CSV for machines"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table

from .pipeline import FileResult

FORMATS = ("table", "json", "jsonl", "csv")
FRAME_COLUMNS = ("path", "index", "time", "score", "status", "error")


def exit_code(results: Iterable[FileResult]) -> int:
    """As virus scanners do: 2 if any input could not be read, else 1 if any is FAKE, else 0."""
    results = list(results)
    if any(r.status == "error" for r in results):
        return 2
    return 1 if any(r.verdict == "FAKE" for r in results) else 0


def summary(results: Sequence[FileResult]) -> dict[str, int]:
    """Counts of inputs by outcome."""
    return {
        "inputs": len(results),
        "fake": sum(r.verdict == "FAKE" for r in results),
        "real": sum(r.verdict == "REAL" for r in results),
        "errors": sum(r.status == "error" for r in results),
    }


def to_json(results: Sequence[FileResult], settings: dict[str, Any]) -> str:
    """One JSON document: the settings used, a summary and every input with its frame scores."""
    doc = {"settings": settings, "summary": summary(results), "inputs": [r.to_dict() for r in results]}
    return json.dumps(doc, indent=2) + "\n"


def frame_rows(results: Sequence[FileResult]) -> Iterable[dict[str, Any]]:
    """One row per scored frame; an input that could not be read gets one row with its error."""
    for r in results:
        if r.status == "error":
            yield {"path": r.path, "index": None, "time": None, "score": None, "status": "error", "error": r.error}
        for f in r.frames:
            extra = {f"score_{m}": v for m, v in f.scores.items()} if f.scores else {}
            yield {"path": r.path, "index": f.index, "time": f.time, "score": f.score, "status": "ok", "error": None, **extra}


def to_jsonl(results: Sequence[FileResult]) -> str:
    """Per-frame rows as JSON lines."""
    return "".join(json.dumps(row) + "\n" for row in frame_rows(results))


def to_csv(results: Sequence[FileResult]) -> str:
    """Per-frame rows as CSV with a header (and a `score_<method>` column per method when several ran)."""
    methods = next((list(r.methods) for r in results if r.methods), [])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*FRAME_COLUMNS, *(f"score_{m}" for m in methods)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(frame_rows(results))
    return buffer.getvalue()


def table(results: Sequence[FileResult], threshold: float) -> Table:
    """A readable table: one line per input, errors and warnings in the last column."""
    out = Table(title=f"streamdet scan (threshold {threshold:g})", title_justify="left")
    for name in ("input", "verdict", "score", "flagged", "time", "note"):
        out.add_column(name, justify="right" if name in ("score", "flagged", "time") else "left", overflow="fold")
    for r in results:
        if r.status == "error":
            out.add_row(r.path, "[bold yellow]ERROR[/]", "", "", "", r.error)
            continue
        style = "bold red" if r.verdict == "FAKE" else "green"
        out.add_row(
            r.path,
            f"[{style}]{r.verdict}[/]",
            f"{r.score:.3f}",
            f"{r.flagged}/{len(r.frames)}",
            f"{r.timings.get('total_s', 0.0):.1f}s",
            "; ".join([*(f"{m} {v['score']:.3f} {v['verdict']}" for m, v in (r.methods or {}).items()), *([r.warning] if r.warning else [])]),
        )
    return out


def render(results: Sequence[FileResult], fmt: str, settings: dict[str, Any]) -> str:
    """The scan output in `fmt` as text."""
    if fmt == "json":
        return to_json(results, settings)
    if fmt == "jsonl":
        return to_jsonl(results)
    if fmt == "csv":
        return to_csv(results)
    console = Console(file=io.StringIO(), width=120, force_terminal=False, color_system=None)
    console.print(table(results, settings["threshold"]))
    return console.file.getvalue()
