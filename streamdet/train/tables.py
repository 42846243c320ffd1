"""`eval` results as a table in the layout of the DistilDIRE paper's Table 1: Acc / AP per generator, then the average."""

from __future__ import annotations

from rich.table import Table as RichTable

from .evaluate import EvalReport, Table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(report: EvalReport) -> RichTable:
    """One row for images and, for video datasets, one for videos; two columns (Acc, AP) per generator and for Avg."""
    rows: list[tuple[str, Table]] = [("images", report.images)]
    if report.videos is not None:
        rows.append(("videos", report.videos))
    generators = sorted({g for _, t in rows for g in t.generators})
    counts = [f"{t.pooled.n_real} real and {t.pooled.n_fake} fake {name}" for name, t in rows]
    out = RichTable(title=f"streamdet eval (threshold {report.threshold})", title_justify="left", caption=", ".join(counts), caption_justify="left")
    out.add_column("")
    for g in generators + ["Avg"]:
        out.add_column(f"{g}\nAcc", justify="right")
        out.add_column(f"{g}\nAP", justify="right")
    for name, t in rows:
        cells = []
        for g in generators:
            m = t.generators.get(g)
            d = m.to_dict() if m else {"acc": None, "ap": None}
            cells += [_pct(d["acc"]), _pct(d["ap"])]
        cells += [_pct(t.average["acc"]), _pct(t.average["ap"])]
        out.add_row(name, *cells)
    return out
