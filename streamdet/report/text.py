"""Scan results → a table for people, and JSON / JSONL / CSV for machines.

The UNCERTAIN count, the frames' own verdicts and their crop boxes appear only when the scan used an
uncertain band or crops other than the center rule, so default outputs stay as they were. Each frame row
names the suspicious segment it lies in; the table shows each input's longest segment and what its C2PA
manifest says (docs/evidence.md).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..aggregate import FAKE, REAL, UNCERTAIN, verdict
from ..errors import shown
from ..provenance import Provenance
from ..results import FileResult, Segment
from ..segments import longest

FORMATS = ("table", "json", "jsonl", "csv")
FRAME_COLUMNS = ("path", "index", "time", "score", "status", "error", "segment")


def segment_label(segment: Segment | None) -> str | None:
    """`KIND START-END` (seconds) of a segment, e.g. `FAKE 1.00-1.90`; None for none."""
    return None if segment is None else f"{segment.kind} {segment.start:.2f}-{segment.end:.2f}"


def segment_at(segments: Sequence[Segment], time: float) -> Segment | None:
    """The segment that spans `time`, if any."""
    return next((s for s in segments if s.start <= time <= s.end), None)


def provenance_note(provenance: Provenance | None) -> str | None:
    """What a file's C2PA manifest says, in a few words for the table; None where there is none (no evidence either way)."""
    if provenance is None or not provenance.present:
        return None
    if not provenance.valid:
        return "C2PA manifest INVALID (" + ", ".join(e.split(":")[0] for e in provenance.errors) + ")"
    said = "declares AI generation" if provenance.declares_ai else "no AI declared"
    return f"C2PA {said} ({provenance.generator or 'unknown generator'}; signed by {provenance.signer or 'unknown'}{', trusted' if provenance.trusted else ''})"


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
            row = {"path": r.path, "index": None, "time": None, "score": None, "status": "error", "error": r.error, "segment": None}
            yield {**row, **({"verdict": None} if band else {}), **({"crop": None} if crops else {}), **({"scored_by": None} if cascade else {})}
        for f in r.frames:
            row = {"path": r.path, "index": f.index, "time": f.time, "score": f.score, "status": r.status, "error": r.error,
                   "segment": segment_label(segment_at(r.segments, f.time))}
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
    for name in ("input", "verdict", "score", "flagged", "longest segment", "time", "note"):
        out.add_column(name, justify="right" if name in ("score", "flagged", "time") else "left", overflow="fold")
    for r in results:
        if r.status == "error":
            out.add_row(Text(shown(r.path)), "[bold yellow]ERROR[/]", "", "", "", "", Text(shown("; ".join(filter(None, [r.error, provenance_note(r.provenance)])))))
            continue
        style = STYLES[r.verdict]
        out.add_row(
            Text(shown(r.path)),
            f"[{style}]{r.verdict}[/]",
            f"{r.score:.3f}",
            f"{r.flagged}/{len(r.frames)}",
            segment_label(longest(r.segments)) or "",
            f"{r.timings.get('total_s', 0.0):.1f}s",
            Text(shown("; ".join([*(f"{m} {v['score']:.3f} {v['verdict']}" for m, v in (r.methods or {}).items()), *filter(None, [r.warning, provenance_note(r.provenance)])]))),
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
