"""The report's summary table: one row per input (path linking to its section, verdict, score, frames), sortable.

Sorting is a few lines of inline JavaScript over the rows' `data-` values, so the page stays one file that
fetches nothing. Clicking a column sorts the rows most suspicious first (FAKE, UNCERTAIN, REAL, ERROR; highest
score first); clicking it again reverses the order.
"""

from __future__ import annotations

import html
from typing import Callable, Sequence

from ..aggregate import FAKE, REAL, UNCERTAIN
from ..results import FileResult

RANK = {FAKE: 3, UNCERTAIN: 2, REAL: 1, "ERROR": 0}  # how suspicious each verdict is, for sorting
SORT_SCRIPT = """
document.querySelectorAll("table.summary th button").forEach(function (button) {
  button.addEventListener("click", function () {
    var body = button.closest("table").tBodies[0], key = button.dataset.key;
    var down = button.dataset.order !== "down";
    var other = key === "score" ? "rank" : "score";
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      var by = Number(b.dataset[key]) - Number(a.dataset[key]) || Number(b.dataset[other]) - Number(a.dataset[other]);
      return (down ? by : -by) || Number(a.dataset.position) - Number(b.dataset.position);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    button.closest("tr").querySelectorAll("button").forEach(function (b) { delete b.dataset.order; });
    button.dataset.order = down ? "down" : "up";
  });
});
"""


def anchor(position: int) -> str:
    """The id of the section of the input at `position` in the report."""
    return f"input-{position}"


def summary_table(results: Sequence[FileResult], colours: dict[str, str], score_text: Callable[[float | None], str]) -> str:
    """The table of every input, with the script that sorts it by verdict or by score."""
    rows = []
    for position, result in enumerate(results):
        label = result.verdict or "ERROR"
        score = -1.0 if result.score is None else result.score
        frames = f"{len(result.frames)}, {result.flagged} flagged" if result.frames else "none"
        rows.append(
            f'<tr data-rank="{RANK[label]}" data-score="{score!r}" data-position="{position}">'
            f'<td><a href="#{anchor(position)}">{html.escape(result.path)}</a></td>'
            f'<td><span class="verdict" style="background:{colours[label]}">{label}</span></td>'
            f"<td>{html.escape(score_text(result.score))}</td><td>{frames}</td></tr>"
        )
    head = '<tr><th>input</th><th><button data-key="rank">verdict</button></th><th><button data-key="score">score</button></th><th>frames</th></tr>'
    return f'<table class="summary"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table><script>{SORT_SCRIPT}</script>'
