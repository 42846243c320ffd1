"""The HTML report's content without a browser: its timeline axes, score formats, crop legend, band, summary and settings.

Pages come from real scans (`streamdet scan --report` on generated media, the tiny ADM and a real student
checkpoint) or from `to_html` over results built here; the SVG and tables are read back with regular expressions.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shlex
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.report.html import OTHER_CROP, SCORING_CROP, draw_crops, score_text, to_html
from streamdet.results import FileResult, FrameScore, Segment
from streamdet.version import __version__

from .media import make_video, write_image

runner = CliRunner()


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def scan_report(tmp_path, ckpts, inputs, *extra: str) -> tuple[str, dict]:
    """Scan `inputs` with the tiny config into a report and a JSON document; both returned."""
    adm, student = ckpts
    page, doc = tmp_path / "report.html", tmp_path / "scan.json"
    result = runner.invoke(app, ["scan", *map(str, inputs), "--config", "tiny", "--adm", str(adm), "--student", str(student), "--quiet",
                                 "--report", str(page), "--out", str(doc), *extra])
    assert result.exit_code in (0, 1) and isinstance(result.exception, (SystemExit, type(None))), result.output
    return page.read_text(), json.loads(doc.read_text())


@pytest.fixture
def ckpts(tiny_adm_ckpt, student_ckpt):
    return tiny_adm_ckpt, student_ckpt


def circles(svg: str) -> list[tuple[float, float]]:
    return [(float(cx), float(cy)) for cx, cy in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)]


def plot_box(svg: str) -> tuple[float, float, float, float]:
    x, y, w, h = re.search(r'<rect class="plot" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg).groups()
    return float(x), float(y), float(w), float(h)


def test_the_timeline_spans_the_whole_clip_with_axis_titles(tmp_path, ckpts):
    clip = make_video(tmp_path / "three.mp4", 15, (64, 48), 5, pattern=noise)  # 3 s at 5 fps; 4 uniform frames end before 3 s
    page, doc = scan_report(tmp_path, ckpts, [clip])
    (entry,) = doc["inputs"]
    assert entry["duration"] == pytest.approx(3.0, abs=0.01)
    last = entry["frames"][-1]["time"]
    assert last < 2.9
    (svg,) = re.findall(r'<svg class="timeline".*?</svg>', page)
    assert float(re.search(r'data-span="([\d.]+)"', svg).group(1)) == pytest.approx(entry["duration"])
    left, _, width, _ = plot_box(svg)
    assert circles(svg)[-1][0] == pytest.approx(left + width * last / entry["duration"], abs=0.1), "the last frame sits short of the axis end"
    ticks = [float(t) for t in re.findall(r'<text class="tick"[^>]*>([\d.]+)</text>', svg)]
    assert ticks[0] == 0 and ticks[-1] == pytest.approx(3.0)
    assert re.findall(r'<text class="axis"[^>]*>([^<]+)</text>', svg) == ["time (s)", "P(fake)"]
    assert 'class="legend"' not in page, "no crop boxes under the center rule, so no legend"


def sections(page: str) -> dict[str, str]:
    """Each input's section of the page, by the input's file name."""
    found = re.findall(r'<section class="input"[^>]*><h2>([^<]+)</h2>(.*?)</section>', page)
    return {name.rsplit("/", 1)[-1]: body for name, body in found}


def test_an_image_gets_its_score_not_a_chart(tmp_path, ckpts):
    still = write_image(tmp_path / "still.png", noise(1, 64, 48))
    clip = make_video(tmp_path / "clip.mp4", 10, (64, 48), 5, pattern=noise)
    page, doc = scan_report(tmp_path, ckpts, [still, clip])
    by_name = sections(page)
    assert "<svg" not in by_name["still.png"] and "<svg" in by_name["clip.mp4"]
    score = doc["inputs"][0]["frames"][0]["score"]
    shown = re.search(r'<p class="still">A still image: its one frame scored P\(fake\) ([^<]+)\.</p>', by_name["still.png"]).group(1)
    assert shown == html.escape(score_text(score))


def test_every_score_is_printed_in_one_format(tmp_path):
    frames = [FrameScore(i, i / 2, p) for i, p in enumerate([9.333e-05, 0.04062, 0.5, 0.99995, None])]
    result = FileResult("a.mp4", "video", verdict="FAKE", score=0.04062, flagged=1, frames=frames, duration=2.5,
                        segments=[Segment("FAKE", 1.5, 1.5, 1, 0.99995, 1.5, 0.99995)])
    still = FileResult("b.png", "image", verdict="REAL", score=9.333e-05, frames=[FrameScore(0, 0.0, 9.333e-05)])
    page = to_html([result, still], {"threshold": 0.5})
    assert [score_text(p) for p in (9.333e-05, 0.04062, 0.5, 0.99995, None)] == ["<0.001", "0.041", "0.500", ">0.999", "n/a"]
    text = re.sub(r"<[^>]*>", " ", page)  # what is shown (tags and their data attributes dropped)
    assert not re.search(r"\de-\d", text) and "0.04062" not in text
    shown = re.findall(r"(?:s: | score |P\(fake\) (?!≥)|peak |mean )([^ ,<]+)", page)
    assert len(shown) >= 8 and all(re.fullmatch(r"&lt;0\.001|&gt;0\.999|0\.\d{3}|n/a", s.rstrip(".")) for s in shown), shown


def test_the_scoring_crop_is_drawn_over_the_others():
    best, other = [0, 0, 100, 100], [50, 0, 100, 100]  # top edges overlap from x=50 to x=99
    for crops in ([{"box": best}, {"box": other}], [{"box": other}, {"box": best}]):
        image = draw_crops(np.zeros((120, 200, 3), np.uint8), FrameScore(0, 0.0, 0.9, crop=best, crops=crops))
        assert tuple(image[0, 50]) == tuple(image[0, 75]) == SCORING_CROP, "the scoring box wins where they overlap, whatever the crop order"
        assert tuple(image[0, 120]) == tuple(image[50, 149]) == OTHER_CROP


def test_crop_boxes_have_a_legend(tmp_path, ckpts):
    clip = make_video(tmp_path / "wide.mp4", 6, (160, 90), 6, pattern=noise)
    page, doc = scan_report(tmp_path, ckpts, [clip], "--crops", "cover")
    assert len(doc["inputs"][0]["frames"][0]["crops"]) > 1
    legend = re.search(r'<p class="legend">(.*?)</p>', page).group(1)
    colours = re.findall(r"border-color:#([0-9a-f]{6})", legend)
    assert colours == ["%02x%02x%02x" % SCORING_CROP, "%02x%02x%02x" % OTHER_CROP] and "its score" in legend


@pytest.mark.parametrize("band", [(0.2, 0.8), (0.48, 0.5)])
def test_the_uncertain_band_is_shaded_and_its_edges_differ(band):
    low, high = band
    frames = [FrameScore(i, i / 4, p) for i, p in enumerate([0.1, 0.49, 0.9, 0.3])]
    page = to_html([FileResult("a.mp4", "video", verdict="FAKE", score=0.9, frames=frames, duration=1.0)], {"threshold": high, "uncertain": [low, high]})
    (svg,) = re.findall(r'<svg class="timeline".*?</svg>', page)
    left, top, width, height = plot_box(svg)

    def y(p: float) -> float:
        return top + height * (1 - p)

    shade = re.search(r'<rect class="band" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    assert float(shade.group(1)) == pytest.approx(y(high), abs=0.1) and float(shade.group(2)) == pytest.approx(y(low) - y(high), abs=0.2)
    edges = re.findall(r'<line class="threshold"[^>]*y1="([\d.]+)"[^>]*stroke="([^"]+)"[^>]*stroke-dasharray="([^"]+)"', svg)
    assert [float(e[0]) for e in edges] == pytest.approx([y(high), y(low)], abs=0.1)
    assert edges[0][1:] != edges[1][1:] and edges[0][1] != edges[1][1] and edges[0][2] != edges[1][2], "the two edges differ in colour and dash"
    labels = [(float(x), float(at)) for x, at in re.findall(r'<text class="threshold-label" x="([\d.]+)" y="([\d.]+)"', svg)]
    assert all(x > left + width for x, _ in labels), "labels sit in the margin, off the plotted line"
    assert abs(labels[0][1] - labels[1][1]) >= 11, "labels do not overlap each other"


def test_several_inputs_get_a_summary_table_linking_to_their_sections():
    results = [
        FileResult("a.mp4", "video", verdict="REAL", score=0.1, flagged=0, frames=[FrameScore(0, 0.0, 0.1), FrameScore(1, 0.5, 0.1)]),
        FileResult("b <odd>.png", "image", verdict="FAKE", score=0.97, flagged=1, frames=[FrameScore(0, 0.0, 0.97)]),
        FileResult("c.mp4", "unknown", status="error", error="c.mp4: not a video"),
    ]
    page = to_html(results, {"threshold": 0.5})
    rows = re.findall(r'<tr data-rank="(\d)" data-score="([-\d.]+)" data-position="(\d)"><td><a href="#([^"]+)">([^<]+)</a></td>.*?</tr>', page)
    assert [(int(r), float(s), t) for r, s, _, _, t in rows] == [(1, 0.1, "a.mp4"), (3, 0.97, "b &lt;odd&gt;.png"), (0, -1.0, "c.mp4")]
    ids = re.findall(r'<section class="input" id="([^"]+)"', page)
    assert [r[3] for r in rows] == ids and len(set(ids)) == 3
    assert page.index('class="summary"') < page.index('<section class="input"') and "<script>" in page and "src=" not in page.split("<script>")[1].split("</script>")[0]
    assert 'class="summary"' not in to_html(results[:1], {"threshold": 0.5}), "one input needs no summary"


def test_settings_are_readable_and_say_what_made_the_verdicts(tmp_path, ckpts, monkeypatch):
    adm, student = ckpts
    clip = make_video(tmp_path / "clip.mp4", 10, (64, 48), 5, pattern=noise)
    argv = ["streamdet", "scan", str(clip), "--config", "tiny", "--adm", str(adm), "--student", str(student), "--uncertain", "0.3:0.9"]
    monkeypatch.setattr(sys, "argv", argv)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    page, doc = scan_report(tmp_path, ckpts, [clip], "--uncertain", "0.3:0.9")
    info = doc["settings"]
    digests = {role: hashlib.sha256(path.read_bytes()).hexdigest() for role, path in (("adm", adm), ("student", student))}
    assert info["checkpoints"] == {role: {"file": str(path), "sha256": digests[role]} for role, path in (("adm", adm), ("student", student))}
    assert before <= datetime.strptime(info["time_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) <= datetime.now(timezone.utc)
    assert info["command"] == shlex.join(argv) and info["version"] == __version__
    table = re.search(r'<table class="settings">(.*?)</table>', page).group(1)
    shown = {label: re.sub(r"<[^>]+>", "", value) for label, value in re.findall(r"<tr><th>([^<]+)</th><td>(.*?)</td></tr>", table)}
    assert shown["sampling"] == "uniform, 4 frames" and shown["verdicts"] == "FAKE at P(fake) ≥ 0.9, UNCERTAIN from 0.3, else REAL"
    assert shown["ADM"] == f"{adm.name}, sha256 {digests['adm']}" and shown["student"] == f"{student.name}, sha256 {digests['student']}"
    assert shown["streamdet"] == __version__ and shown["time"] == info["time_utc"].replace("T", " ").replace("Z", " UTC")
    assert html.unescape(shown["command"]) == shlex.join(argv)
    assert not re.search(r"null|None|[{}\[\]]", table), "no raw JSON, no unset fields"
