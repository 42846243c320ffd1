"""`eval` results as a table in the layout of the DistilDIRE paper's Table 1: Acc / AP per generator, then the average;
and, for a student not run as eager fp32, a second table of the change against it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from ..errors import shown

from .evaluate import EvalReport, Table
from .robustness import RobustnessReport


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def table(report: EvalReport) -> RichTable:
    """One row for images and, for video datasets, one for videos; two columns (Acc, AP) per generator and for Avg."""
    rows: list[tuple[str, Table]] = [("images", report.images)]
    if report.videos is not None:
        rows.append(("videos", report.videos))
    generators = sorted({g for _, t in rows for g in t.generators})
    counts = [f"{t.pooled.n_real} real and {t.pooled.n_fake} fake {name}" for name, t in rows]
    out = RichTable(title=f"streamdet eval: {report.method} (threshold {report.threshold})", title_justify="left", caption=", ".join(counts), caption_justify="left")
    out.add_column("")
    for g in generators + ["Avg"]:
        out.add_column(Text(f"{shown(g)}\nAcc"), justify="right")  # generator names are folder names: never markup
        out.add_column(Text(f"{shown(g)}\nAP"), justify="right")
    for name, t in rows:
        cells = []
        for g in generators:
            m = t.generators.get(g)
            d = m.to_dict() if m else {"acc": None, "ap": None}
            cells += [_pct(d["acc"]), _pct(d["ap"])]
        cells += [_pct(t.average["acc"]), _pct(t.average["ap"])]
        out.add_row(name, *cells)
    return out


def change_table(report: EvalReport) -> RichTable:
    """Per row (images, videos): Avg Acc and AP of the eager fp32 student (ref) and of this one, the change in points, verdict agreement and max |ΔP|."""
    out = RichTable(
        title=f"student: {report.backend} {report.student_precision} (this) against eager fp32 (ref)",
        title_justify="left",
        caption="Acc, AP: average over generators in %; Δ = this − ref in points",
        caption_justify="left",
    )
    out.add_column("")
    for name in ("Acc\nref", "Acc\nthis", "Acc\nΔ", "AP\nref", "AP\nthis", "AP\nΔ", "agree", "max\n|ΔP|"):
        out.add_column(name, justify="right")
    for name, change in report.changes.items():
        cells = []
        for metric in ("acc", "ap"):
            ref, new, delta = change.metric(metric)
            cells += [_pct(ref), _pct(new), _points(delta)]
        out.add_row(name, *cells, _pct(change.comparison.agreement), f"{change.comparison.max_abs_diff:.3g}")
    return out


def render(report: EvalReport) -> Group:
    """What `eval` prints: the table, then the change table when there is one."""
    return Group(table(report), *([change_table(report)] if report.changes else []))


def robustness_table(report: RobustnessReport, level: str = "images") -> RichTable:
    """One row per degradation and strength (clean first): Acc/AP per generator and Avg, and the Avg change against clean."""
    rows = [r for r in report.rows if getattr(r, level) is not None]
    generators = sorted({g for r in rows for g in getattr(r, level).generators})
    pooled = getattr(report.clean, level).pooled
    out = RichTable(
        title=f"streamdet eval --degrade, {level} (threshold {report.threshold})",
        title_justify="left",
        caption=f"{pooled.n_real} real and {pooled.n_fake} fake {level}; Δ = Avg − clean Avg in points",
        caption_justify="left",
    )
    out.add_column("degradation")
    for g in generators + ["Avg"]:
        out.add_column(Text(f"{shown(g)}\nAcc"), justify="right")  # generator names are folder names: never markup
        out.add_column(Text(f"{shown(g)}\nAP"), justify="right")
    out.add_column("Acc\nΔ", justify="right")
    out.add_column("AP\nΔ", justify="right")
    for row in rows:
        t: Table = getattr(row, level)
        cells = []
        for g in generators:
            d = t.generators[g].to_dict() if g in t.generators else {"acc": None, "ap": None}
            cells += [_pct(d["acc"]), _pct(d["ap"])]
        cells += [_pct(t.average["acc"]), _pct(t.average["ap"])]
        cells += [_points(row.change(report.clean, m, level)) for m in ("acc", "ap")]
        out.add_row(row.degradation.name, *cells)
    return out


def render_robustness(report: RobustnessReport) -> Group:
    """What `eval --degrade` prints: the images table, and the videos table for `frames` datasets."""
    return Group(*(robustness_table(report, level) for level in ("images", "videos") if getattr(report.clean, level) is not None))
