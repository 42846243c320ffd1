"""Scan results → one self-contained HTML page: with several inputs a sortable summary table (`summary`), then per
input its verdict, a P(fake) timeline (its suspicious segments shaded), its most suspicious frames (with
`--explain`, their heatmaps) and what its C2PA manifest says; last, the settings that produced it.

Everything is inline (CSS, SVG timelines, JPEG thumbnails as data URIs), so the file opens anywhere without a network.
Thumbnails are taken while the scan runs (`Thumbnails.add` is the scan's `on_scored` hook): only the few highest-scoring
frames of each input are kept, small, so memory does not grow with video length.
"""

from __future__ import annotations

import base64
import heapq
import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np

from ..aggregate import FAKE, REAL, UNCERTAIN
from ..results import FileResult, FrameScore
from ..version import __version__
from ..video import Frame
from .runinfo import settings_table
from .summary import anchor, summary_table

if TYPE_CHECKING:
    from ..provenance import Provenance
    from .heatmaps import Heatmaps

THUMB_WIDTH = 240
SCORING_CROP = (220, 40, 40)  # RGB of the box that gave a frame its score
OTHER_CROP = (40, 200, 220)  # RGB of the other boxes scored
COLORS = {FAKE: "#c62828", UNCERTAIN: "#b26a00", REAL: "#2e7d32", "ERROR": "#555"}
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;word-break:break-all;margin:0 0 .4em}
section.input{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.verdict{display:inline-block;color:#fff;border-radius:4px;padding:.1em .6em;font-weight:600}
.note{color:#8a5a00}.error{color:#c62828}
figure{display:inline-block;margin:.4em;text-align:center;font-size:.85em}
figure img{display:block;border:1px solid #ccc;max-width:240px;max-height:200px}
table.summary{border-collapse:collapse;margin:1em 0}table.summary td,table.summary th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}
table.summary td:first-child{word-break:break-all}table.summary th button{font:inherit;font-weight:600;border:0;background:none;cursor:pointer;text-decoration:underline dotted}
table.settings th{text-align:left;font-weight:600;padding:.15em 1em .15em 0;vertical-align:top;white-space:nowrap}
table.settings td{padding:.15em 0;vertical-align:top;font-size:.9em}table.settings code{font-size:1.05em;word-break:break-all}
svg text{font-size:11px;fill:#444}
div.provenance{border-left:4px solid #999;padding:.3em .8em;margin:.6em 0;font-size:.9em}
div.provenance[data-state=ai]{border-color:#c62828;background:#fdecea}
div.provenance[data-state=invalid]{border-color:#b26a00;background:#fff4e5}
p.legend{font-size:.85em}.swatch{display:inline-block;width:1.4em;height:.8em;border:2px solid;margin:0 .3em 0 .8em;vertical-align:middle}
div.explained{display:inline-block;border:1px solid #eee;margin:.3em;padding:.2em}
"""
SHADES = {FAKE: "#c62828", UNCERTAIN: "#b26a00"}
SHOWN = (("frame", "frame"), ("cam", "Grad-CAM over the frame"), ("eps", "eps (the noise map read)"))


def score_text(score: float | None) -> str:
    """A P(fake) as the report prints every one: three decimals, "<0.001" and ">0.999" at the ends, "n/a" where not finite."""
    if score is None or not math.isfinite(score):
        return "n/a"
    if score < 0.0005:
        return "<0.001"
    if score >= 0.9995:
        return ">0.999"
    return f"{score:.3f}"


def _score(score: float | None) -> str:
    """`score_text`, escaped for HTML."""
    return html.escape(score_text(score))


@dataclass
class Thumb:
    """One kept frame: its score, index, time, a JPEG thumbnail with the crop boxes drawn and how many there are."""

    score: float
    index: int
    time: float
    jpeg: bytes
    crops: int = 0


class Thumbnails:
    """Keeps the `keep` highest-scoring frames of each input as small JPEGs (crop boxes drawn; the scoring one red, on top)."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._heaps: dict[str, list[tuple[float, int, Thumb]]] = {}

    def add(self, frame: Frame, scored: FrameScore) -> None:
        """The scan's `on_scored` hook: keep this frame if it is among its input's highest so far."""
        if scored.score is None or not np.isfinite(scored.score):
            return
        heap = self._heaps.setdefault(frame.source, [])
        key = (scored.score, -frame.index)
        if len(heap) >= self.keep and key <= heap[0][:2]:
            return
        item = (scored.score, -frame.index, Thumb(scored.score, frame.index, frame.time, _thumbnail(frame.image, scored), len(scored.crops or [])))
        if len(heap) >= self.keep:
            heapq.heapreplace(heap, item)
        else:
            heapq.heappush(heap, item)

    def of(self, path: str) -> list[Thumb]:
        """The kept frames of one input, highest score first."""
        return [thumb for _, _, thumb in sorted(self._heaps.get(path, []), key=lambda item: item[:2], reverse=True)]


def _thumbnail(image: np.ndarray, scored: FrameScore) -> bytes:
    """A JPEG THUMB_WIDTH wide of the frame, with every crop box drawn (see `draw_crops`)."""
    height, width = image.shape[:2]
    scale = THUMB_WIDTH / width
    small = cv2.resize(image, (THUMB_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    small = cv2.cvtColor(draw_crops(small, scored, scale), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("OpenCV could not encode a thumbnail")
    return encoded.tobytes()


def draw_crops(rgb: np.ndarray, scored: FrameScore, scale: float = 1.0) -> np.ndarray:
    """The frame's crop boxes (scaled by `scale`) drawn into the RGB image: the others thin in OTHER_CROP, then the
    one that gave the score thick in SCORING_CROP, last, so that it is on top where boxes overlap."""
    crops = scored.crops or []
    ordered = [c for c in crops if c["box"] != scored.crop] + [c for c in crops if c["box"] == scored.crop]
    for crop in ordered:
        x, y, w, h = (round(v * scale) for v in crop["box"])
        best = crop["box"] == scored.crop
        cv2.rectangle(rgb, (x, y), (x + w - 1, y + h - 1), SCORING_CROP if best else OTHER_CROP, 2 if best else 1)
    return rgb


def _legend() -> str:
    """What the boxes drawn on the thumbnails are."""
    swatch = '<span class="swatch" style="border-color:#{:02x}{:02x}{:02x}"></span>'
    return (
        f'<p class="legend">{swatch.format(*SCORING_CROP)} the crop that gave the frame its score (its highest) '
        f"{swatch.format(*OTHER_CROP)} the other crops scored</p>"
    )


def _ticks(span: float) -> list[float]:
    """Round times (s) from 0 to `span` for the x axis: steps of 1, 2 or 5 × a power of ten, about six of them."""
    raw = span / 6
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def _label_rows(ys: Sequence[float], lowest: float, highest: float, gap: float = 13.0) -> list[float]:
    """Heights for labels wanted at `ys`, moved apart to at least `gap` pixels and kept within [lowest, highest]."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed: dict[int, float] = {}
    previous = lowest - gap
    for i in order:
        placed[i] = previous = max(ys[i], previous + gap)
    overflow = max(0.0, previous - highest)
    return [placed[i] - overflow for i in range(len(ys))]


Lines = tuple[list[tuple[float, str, str, str]], tuple[float, float] | None]  # (value, label, colour, dash) per line; the band


def _lines(settings: dict[str, Any]) -> Lines:
    """The timeline's decision lines (value, label, colour, dash pattern) and the UNCERTAIN band, if any."""
    band = settings.get("uncertain")
    if band:
        low, high = band
        return [(high, "FAKE from", COLORS[FAKE], "7,3"), (low, "UNCERTAIN from", COLORS[UNCERTAIN], "2,3")], (low, high)
    return [(settings["threshold"], "FAKE from", COLORS[FAKE], "5,4")], None


def _timeline(result: FileResult, decision: Lines, width: int = 720, height: int = 190) -> str:
    """An inline SVG of P(fake) against time over the whole media (its duration, else up to the last frame), with
    axis titles, round time ticks, the decision thresholds as dashed lines labelled in the right margin and the
    UNCERTAIN band shaded between its edges."""
    lines, band = decision
    points = [f for f in result.frames if f.score is not None]
    left, right, top, bottom = 52, 124, 10, 42
    last = max((f.time for f in result.frames), default=0.0)
    span = max(result.duration or 0.0, last) or 1.0

    def x(t: float) -> float:
        return left + (width - left - right) * t / span

    def y(p: float) -> float:
        return top + (height - top - bottom) * (1.0 - p)

    parts = [f'<svg class="timeline" role="img" data-span="{span:g}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    parts.append(f'<rect class="plot" x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="#fafafa" stroke="#ccc"/>')
    for value in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for tick in _ticks(span):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{y(0)}" y2="{y(0) + 4}" stroke="#999"/>')
        parts.append(f'<text class="tick" x="{x(tick):.1f}" y="{y(0) + 15}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text class="axis" x="{left + (width - left - right) / 2:.1f}" y="{height - 6}" text-anchor="middle">time (s)</text>')
    parts.append(f'<text class="axis" transform="translate(14 {top + (height - top - bottom) / 2:.1f}) rotate(-90)" text-anchor="middle">P(fake)</text>')
    if band is not None:
        low, high = band
        parts.append(f'<rect class="band" x="{left}" y="{y(high):.1f}" width="{width - left - right}" height="{y(low) - y(high):.1f}" fill="{SHADES[UNCERTAIN]}" fill-opacity="0.10"><title>UNCERTAIN band {low:g} to {high:g}</title></rect>')
    for (value, label, colour, dash), at in zip(lines, _label_rows([y(line[0]) for line in lines], top + 4, height - bottom)):
        parts.append(f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"><title>{html.escape(label)} {value:g}</title></line>')
        parts.append(f'<text class="threshold-label" x="{width - right + 6}" y="{at + 4:.1f}" fill="{colour}">{html.escape(label)} {value:.3g}</text>')
    for segment in result.segments:
        x0, x1 = x(segment.start), max(x(segment.end), x(segment.start) + 3)
        parts.append(
            f'<rect class="segment" data-kind="{segment.kind}" x="{x0 - 1.5:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{height - top - bottom}" '
            f'fill="{SHADES[segment.kind]}" fill-opacity="0.15"><title>{segment.kind} segment {segment.start:.3f}-{segment.end:.3f} s, '
            f'{segment.frames} frames, peak {_score(segment.peak)}, mean {_score(segment.mean)}</title></rect>'
        )
    if len(points) > 1:
        path = " ".join(f"{x(f.time):.1f},{y(f.score):.1f}" for f in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    for f in points:
        parts.append(f'<circle cx="{x(f.time):.1f}" cy="{y(f.score):.1f}" r="3" fill="#1565c0"><title>frame {f.index}, {f.time:.3f} s: {_score(f.score)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _provenance(provenance: "Provenance") -> str:
    """The C2PA panel: strong evidence when a valid manifest declares AI, a flag when it is invalid, no evidence without one."""
    if not provenance.present:
        text = "No C2PA manifest: no evidence either way (most files have none, and re-encoding strips them)."
        state = "none"
        if provenance.note:
            text = f"C2PA not read: {provenance.note}."
    elif not provenance.valid:
        state, text = "invalid", "C2PA manifest INVALID: changed after signing or damaged; what it claims cannot be relied on. " + "; ".join(provenance.errors)
    else:
        state = "ai" if provenance.declares_ai else "valid"
        said = f"declares AI generation ({', '.join(provenance.source_types)}): strong evidence" if provenance.declares_ai else "valid, declares no AI generation"
        trust = "trusted signer" if provenance.trusted else "signer not in your trust anchors"
        text = f"C2PA manifest {said}. Generator {provenance.generator or 'unknown'}, signed by {provenance.signer or 'unknown'} ({trust})."
        if provenance.actions:
            text += f" Actions: {', '.join(provenance.actions)}."
    return f'<div class="provenance" data-state="{state}">{html.escape(text)}</div>'


def _explained(heatmaps: "Heatmaps", path: str) -> str:
    """The kept frames' frame, Grad-CAM and eps images side by side."""
    out = []
    for kept in heatmaps.of(path):
        figures = "".join(
            f'<figure><img alt="{kind} of frame {kept.index}" data-kind="{kind}" src="data:image/png;base64,{base64.b64encode(kept.pngs[kind]).decode("ascii")}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for kind, caption in SHOWN
        )
        out.append(f'<div class="explained"><p>frame {kept.index} at {kept.time:.3f} s: {_score(kept.score)}, eps share {kept.about["eps_share"]:.2f}</p>{figures}</div>')
    return "".join(out)


def _section(position: int, result: FileResult, lines: Lines, thumbs: list[Thumb], heatmaps: "Heatmaps | None" = None) -> str:
    """One input: verdict, score, notes, provenance, timeline, thumbnails and heatmaps."""
    label = result.verdict or "ERROR"
    out = [f'<section class="input" id="{anchor(position)}" data-verdict="{label}"><h2>{html.escape(result.path)}</h2>']
    out.append(f'<p><span class="verdict" style="background:{COLORS[label]}">{label}</span>')
    if result.score is not None:
        out.append(f" score {_score(result.score)}, {result.flagged}/{len(result.frames)} frames flagged")
    out.append("</p>")
    if result.error:
        out.append(f'<p class="error">{html.escape(result.error)}</p>')
    if result.warning:
        out.append(f'<p class="note">{html.escape(result.warning)}</p>')
    if result.provenance is not None:
        out.append(_provenance(result.provenance))
    if len(result.frames) > 1 or (result.duration or 0.0) > 0:
        out.append(_timeline(result, lines))
    elif result.frames:  # a still image (or one frame of unknown length): one score, no time to chart it against
        (only,) = result.frames
        what = "A still image: its one frame" if result.kind == "image" else f"One frame, at {only.time:.3f} s,"
        out.append(f'<p class="still">{what} scored P(fake) {_score(only.score)}.</p>')
    if thumbs:
        out.append("<div class=\"thumbs\">")
        for thumb in thumbs:
            data = base64.b64encode(thumb.jpeg).decode("ascii")
            out.append(
                f'<figure><img alt="frame {thumb.index}" src="data:image/jpeg;base64,{data}">'
                f"<figcaption>frame {thumb.index} at {thumb.time:.3f} s: {_score(thumb.score)}</figcaption></figure>"
            )
        out.append("</div>")
        if any(thumb.crops for thumb in thumbs):
            out.append(_legend())
    if heatmaps is not None:
        out.append(_explained(heatmaps, result.path))
    out.append("</section>")
    return "".join(out)


def to_html(results: Sequence[FileResult], settings: dict[str, Any], thumbnails: Thumbnails | None = None, heatmaps: "Heatmaps | None" = None) -> str:
    """The whole report as one HTML document."""
    lines = _lines(settings)
    counts = {label: sum((r.verdict or "ERROR") == label for r in results) for label in (FAKE, UNCERTAIN, REAL, "ERROR")}
    summary = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
    body = "".join(_section(i, r, lines, thumbnails.of(r.path) if thumbnails else [], heatmaps) for i, r in enumerate(results))
    table = summary_table(results, COLORS, score_text) if len(results) > 1 else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>streamdet report</title><style>{CSS}</style></head>'
        f"<body><h1>streamdet {html.escape(__version__)} scan: {len(results)} inputs ({summary})</h1>"
        f"{table}{body}<h2>Settings</h2>{settings_table(settings)}</body></html>\n"
    )
