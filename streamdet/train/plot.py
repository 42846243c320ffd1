"""`eval --plot`: average AP against strength, one panel per degradation SPEC, the clean AP as a dashed line (matplotlib, optional)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..errors import ConfigError
from ..files import write_bytes
from .robustness import Row, RobustnessReport


def plot_robustness(report: RobustnessReport, path: str | Path) -> None:
    """Draw the report's average image AP per strength into a PNG at `path` (written atomically)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(f"{path}: --plot needs matplotlib (pip install 'streamdet[plot]')") from None
    series: dict[str, list[Row]] = {}
    for row in report.rows[1:]:
        series.setdefault(row.series, []).append(row)
    columns = min(len(series), 3) or 1
    lines = max(1, math.ceil(len(series) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), dpi=100, squeeze=False, sharey=True)
    try:
        clean = report.clean.images.average["ap"]
        for panel, (name, rows) in zip(axes.flat, series.items()):
            ap = [math.nan if r.images.average["ap"] is None else 100 * r.images.average["ap"] for r in rows]
            panel.plot([r.degradation.strength for r in rows], ap, marker="o", label="degraded")
            if clean is not None:
                panel.axhline(100 * clean, color="gray", linestyle="--", label="clean")
            panel.set_title(name, fontsize="medium")
            panel.set_xlabel("strength")
            panel.set_ylim(0, 100)
            panel.grid(alpha=0.3)
        for panel in axes.flat[len(series) :]:
            panel.set_visible(False)
        for panel in axes[:, 0]:
            panel.set_ylabel("average AP (%)")
        axes.flat[0].legend(fontsize="small")
        figure.suptitle(f"{Path(report.dataset).name}: AP under degradation ({Path(report.student).name})", fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    write_bytes(Path(path), buffer.getvalue())
