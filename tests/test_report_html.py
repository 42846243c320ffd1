"""`streamdet scan --report`: the self-contained HTML page, opened from disk in a real headless Chromium.

The browser is Debian's `chromium` driven through its `chromedriver` with Selenium. Without them the browser
test is skipped, saying so, unless STREAMDET_REQUIRE_BROWSER=1 (set by .ci/run), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.results import FrameScore
from streamdet.report.html import Thumbnails
from streamdet.video import Frame

from .media import make_video, write_image

pytestmark = [pytest.mark.slow, pytest.mark.browser]

runner = CliRunner()


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def chromium_driver():
    """A headless Chromium through Selenium, or a skip (a failure under STREAMDET_REQUIRE_BROWSER=1) naming what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [name for name, found in [("chromium", chromium), ("chromedriver", driver), ("selenium", webdriver)] if not found]
    if missing:
        reason = f"no headless browser here: {', '.join(missing)} missing (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("STREAMDET_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1600"):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)  # the given driver: Selenium downloads nothing


def console_errors_and_screenshot(browser, shot: Path) -> list:
    """The page's SEVERE console entries, after saving a screenshot of it at `shot` (a PNG the test then checks)."""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert browser.save_screenshot(str(shot))
    return errors


def test_thumbnails_keep_the_highest_frames_of_each_input():
    keep = Thumbnails(keep=2)
    image = noise(0, 32, 24)
    for index, score in enumerate([0.2, 0.9, 0.1, 0.7, 0.95, None]):
        keep.add(Frame("a.mp4", index, index / 10, image), FrameScore(index, index / 10, score))
    keep.add(Frame("b.png", 0, 0.0, image), FrameScore(0, 0.0, 0.3))
    assert [(t.index, t.score) for t in keep.of("a.mp4")] == [(4, 0.95), (1, 0.9)]
    assert [t.index for t in keep.of("b.png")] == [0] and keep.of("c.mp4") == []
    assert all(t.jpeg[:2] == b"\xff\xd8" for t in keep.of("a.mp4")), "thumbnails are JPEGs"


def test_report_renders_every_input_in_a_headless_chromium(tmp_path, tiny_adm_ckpt, student_ckpt):
    make_video(tmp_path / "wide.mp4", 6, (160, 90), 6, pattern=noise)
    make_video(tmp_path / "tall.mkv", 5, (48, 96), 5, pattern=noise)
    write_image(tmp_path / "still.png", noise(9, 64, 48))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    page, doc_path = tmp_path / "report.html", tmp_path / "scan.json"
    inputs = [str(tmp_path / name) for name in ("wide.mp4", "tall.mkv", "still.png", "broken.mp4")]
    result = runner.invoke(app, [
        "scan", *inputs, "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--quiet",
        "--crops", "cover", "--uncertain", "0.2:0.8", "--report", str(page), "--out", str(doc_path),
    ])
    assert result.exit_code == 2, result.output  # the broken input
    html = page.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing is fetched from a network"
    doc = json.loads(doc_path.read_text())
    thumbs = sum(min(4, len(r["frames"])) for r in doc["inputs"])
    assert thumbs == 4 + 4 + 1  # the tiny config samples 4 frames of a video, the report keeps 4 per input

    browser = chromium_driver()
    try:
        browser.get(page.resolve().as_uri())
        sections = browser.execute_script("return [...document.querySelectorAll('section.input')].map(s => [s.querySelector('h2').textContent, s.dataset.verdict])")
        loaded = browser.execute_script("return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        total = browser.execute_script("return document.images.length")
        timelines = browser.execute_script("return document.querySelectorAll('svg.timeline').length")
        lines = browser.execute_script("return document.querySelectorAll('svg.timeline line[stroke-dasharray]').length")
        shot = tmp_path / "report.png"
        errors = console_errors_and_screenshot(browser, shot)
    finally:
        browser.quit()
    assert sections == [[r["path"], r["verdict"] or "ERROR"] for r in doc["inputs"]]
    assert loaded == total == thumbs, "every thumbnail decodes"
    assert timelines == 2 and lines == 2 * 2, "a timeline per scored video (the image has its one score), with the band's two thresholds"
    assert errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_twenty_inputs_get_a_summary_table_that_sorts_in_chromium(tmp_path, tiny_adm_ckpt, student_ckpt):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(8):
        make_video(folder / f"clip{i:02d}.mp4", 6, (48, 32), 6, pattern=lambda index, w, h, i=i: noise(100 * i + index, w, h))
    for i in range(12):
        write_image(folder / f"still{i:02d}.png", noise(1000 + i, 40, 32))
    models = ["--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--quiet"]
    first = tmp_path / "first.json"
    assert runner.invoke(app, ["scan", str(folder), *models, "--out", str(first)]).exit_code == 0
    scores = sorted(r["score"] for r in json.loads(first.read_text())["inputs"])
    low, high = (scores[6] + scores[7]) / 2, (scores[13] + scores[14]) / 2  # a band that makes 6 FAKE, 7 UNCERTAIN, 7 REAL
    page, doc_path = tmp_path / "report.html", tmp_path / "scan.json"
    result = runner.invoke(app, ["scan", str(folder), *models, "--uncertain", f"{low!r}:{high!r}", "--report", str(page), "--out", str(doc_path)])
    assert result.exit_code == 1, result.output
    doc = json.loads(doc_path.read_text())
    assert sorted(r["verdict"] for r in doc["inputs"]) == ["FAKE"] * 6 + ["REAL"] * 7 + ["UNCERTAIN"] * 7
    assert not re.search(r"(src|href)=\"(https?:)?//", page.read_text()), "nothing is fetched from a network"

    paths = [r["path"] for r in doc["inputs"]]
    by_score = [r["path"] for r in sorted(doc["inputs"], key=lambda r: -r["score"])]
    rows = "return [...document.querySelectorAll('table.summary tbody tr')].map(r => r.querySelector('a').textContent)"
    browser = chromium_driver()
    try:
        browser.set_window_size(1100, 3000)
        browser.get(page.resolve().as_uri())
        shown = browser.execute_script(rows)
        targets = browser.execute_script("return [...document.querySelectorAll('table.summary a')].map(a => document.getElementById(a.hash.slice(1)).querySelector('h2').textContent)")
        browser.find_element("css selector", "table.summary button[data-key=score]").click()
        highest_first = browser.execute_script(rows)
        browser.find_element("css selector", "table.summary button[data-key=score]").click()
        lowest_first = browser.execute_script(rows)
        browser.find_element("css selector", "table.summary button[data-key=rank]").click()
        verdicts = browser.execute_script("return [...document.querySelectorAll('table.summary tbody tr .verdict')].map(v => v.textContent)")
        shot = tmp_path / "report-20.png"
        errors = console_errors_and_screenshot(browser, shot)
    finally:
        browser.quit()
    assert shown == paths and len(shown) == 20, "20 rows, in input order at first"
    assert targets == paths, "each row links to its own input's section"
    assert highest_first == by_score != paths and lowest_first == by_score[::-1]
    assert verdicts == ["FAKE"] * 6 + ["UNCERTAIN"] * 7 + ["REAL"] * 7
    assert errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
