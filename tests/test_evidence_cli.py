"""Segments, provenance and `--explain` through `streamdet scan`: the JSON, table, CSV, the heatmap PNGs and the HTML report in Chromium."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

pytest.importorskip("c2pa", reason="c2pa-python (the `provenance` extra) is not installed")
pytest.importorskip("pytorch_grad_cam", reason="grad-cam (the `explain` extra) is not installed")

from streamdet.cli import app  # noqa: E402
from streamdet.report.overlay import KINDS  # noqa: E402
from streamdet.report.text import render, table  # noqa: E402
from streamdet.results import FileResult  # noqa: E402

from .credentials import IPTC, make_credentials, sign  # noqa: E402
from .media import make_video, write_image  # noqa: E402
from .test_report_html import chromium_driver, console_errors_and_screenshot  # noqa: E402

runner = CliRunner()


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.browser
@pytest.mark.slow
def test_scan_reports_segments_provenance_and_heatmaps_everywhere(tmp_path, tiny_adm_ckpt, student_ckpt):
    credentials = make_credentials("Test Studio", "test signer")
    folder = tmp_path / "in"
    folder.mkdir()
    plain = make_video(tmp_path / "plain.mp4", 8, (96, 64), 4, pattern=noise)
    sign(plain, folder / "ai.mp4", credentials, "TestGenerator 2.1", [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}])
    signed = bytearray((folder / "ai.mp4").read_bytes())
    signed[signed.find(b"mdat") + 64] ^= 0xFF
    (folder / "tampered.mp4").write_bytes(bytes(signed))
    write_image(folder / "still.png", noise(3, 64, 48))
    out, page, heat = tmp_path / "scan.json", tmp_path / "report.html", tmp_path / "heat"
    result = runner.invoke(app, [
        "scan", str(folder), "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--quiet",
        "--threshold", "0", "--explain", str(heat), "--report", str(page), "--out", str(out),
    ])
    assert result.exit_code == 1, result.output  # every frame is at or above a threshold of 0: FAKE
    doc = json.loads(out.read_text())
    inputs = {r["path"].rsplit("/", 1)[-1]: r for r in doc["inputs"]}
    assert doc["settings"]["segment_gap_s"] == 0.0
    for r in inputs.values():
        frames = r["frames"]
        scores = [f["score"] for f in frames]
        assert r["segments"] == [{"kind": "FAKE", "start": frames[0]["time"], "end": frames[-1]["time"], "frames": len(frames),
                                  "peak": max(scores), "peak_time": frames[int(np.argmax(scores))]["time"], "mean": pytest.approx(sum(scores) / len(scores))}]
        for f in frames:
            assert [p.rsplit(".", 2)[-2] for p in f["explain"]["files"]] == list(KINDS) and 0 <= f["explain"]["eps_share"] <= 1
    assert len(list(heat.glob("*.png"))) == len(KINDS) * sum(len(r["frames"]) for r in inputs.values())
    ai, tampered, still = inputs["ai.mp4"]["provenance"], inputs["tampered.mp4"]["provenance"], inputs["still.png"]["provenance"]
    assert (ai["present"], ai["valid"], ai["declares_ai"], ai["generator"]) == (True, True, True, "TestGenerator 2.1")
    assert (tampered["present"], tampered["valid"]) == (True, False) and tampered["errors"][0].startswith("assertion.bmffHash.mismatch")
    assert still["present"] is False and still["note"] is None

    results = [FileResult.from_dict(r) for r in doc["inputs"]]
    assert results[0].to_dict() == doc["inputs"][0], "the schema round-trips (batch part files)"
    console = Console(file=io.StringIO(), width=400, color_system=None)
    console.print(table(results, doc["settings"]["threshold"]))
    table_text = console.file.getvalue()
    last = inputs["ai.mp4"]["frames"][-1]["time"]
    assert f"FAKE 0.25-{last:.2f}" in table_text and "C2PA declares AI generation (TestGenerator 2.1" in table_text and "C2PA manifest INVALID" in table_text
    rows = render(results, "csv", doc["settings"]).splitlines()
    assert rows[0].endswith(",segment") and all(row.endswith(f"FAKE 0.25-{last:.2f}") for row in rows[1:] if "/ai.mp4," in row)

    html = page.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing is fetched from a network"
    browser = chromium_driver()
    try:
        browser.get(page.resolve().as_uri())
        shaded = browser.execute_script("return [...document.querySelectorAll('svg.timeline rect.segment')].map(r => r.dataset.kind)")
        panels = browser.execute_script("return [...document.querySelectorAll('div.provenance')].map(d => d.dataset.state)")
        heatmaps = browser.execute_script("return [...document.querySelectorAll('div.explained img')].filter(i => i.complete && i.naturalWidth > 0).map(i => i.dataset.kind)")
        shot = tmp_path / "report.png"
        errors = console_errors_and_screenshot(browser, shot)
    finally:
        browser.quit()
    assert shaded == ["FAKE"] * 2, "each video's one segment is shaded on its timeline (the still image has its score, no timeline)"
    assert sorted(panels) == ["ai", "invalid", "none"]
    kept = sum(min(4, len(r["frames"])) for r in inputs.values())
    assert heatmaps == ["frame", "cam", "eps"] * kept, "frame, Grad-CAM over it and eps for each kept frame, all decoded"
    assert errors == [] and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
