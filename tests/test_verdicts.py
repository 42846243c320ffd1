"""The UNCERTAIN band (scan outputs, watch events) and the crop modes (center, cover, faces) on generated media."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.aggregate import parse_band, verdict
from streamdet.cli import app
from streamdet.crops import FaceFinder, center_box, cover_boxes, crop_boxes
from streamdet.detector import Detector
from streamdet.errors import ConfigError
from streamdet.live.events import EventLog
from streamdet.live.mailbox import LiveFrame
from streamdet.live.source import SourceSettings
from streamdet.live.targets import StreamTarget
from streamdet.live.watch import Watch, WatchSettings
from streamdet.live.window import AlertRule
from .engines import configured, engine, scan
from streamdet.preprocess import preprocess_boxes

from .media import FACE_CENTER, drawn_face, make_video, write_image

runner = CliRunner()
FAKE_P = 1 / (1 + math.exp(-6.0))  # what the fake student gives every frame (its head: weight 0, bias 6)


def has_cascades() -> bool:
    try:
        FaceFinder().check()
    except Exception:
        return False
    return True


needs_cascades = pytest.mark.skipif(not has_cascades(), reason=f"OpenCV {cv2.__version__} ships no Haar cascades (5.x dropped them); pyproject pins opencv-python-headless<5")


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verdicts")
    make_video(root / "wide.mp4", 6, (160, 90), 6, pattern=noise)
    write_image(root / "still.png", noise(7, 64, 48))
    make_video(root / "face.mp4", 3, (320, 180), 3, pattern=lambda i, w, h: drawn_face(w, h))
    return root


def _tiny(adm: Path, student: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--adm", str(adm), "--student", str(student), "--quiet", *extra]


# --- the UNCERTAIN band ---------------------------------------------------------------------------

def test_band_verdicts_at_and_around_its_edges():
    band = (0.3, 0.7)
    assert [verdict(s, band=band) for s in (0.0, 0.2999, 0.3, 0.5, 0.6999, 0.7, 1.0)] == ["REAL", "REAL", "UNCERTAIN", "UNCERTAIN", "UNCERTAIN", "FAKE", "FAKE"]
    assert verdict(0.6, 0.5) == "FAKE", "without a band the threshold alone decides"
    assert parse_band("0.3:0.7") == (0.3, 0.7)
    for bad in ("0.7:0.3", "0.3", "a:b", "0.2:1.5", "0.5:0.5"):
        with pytest.raises(ValueError, match=f"--uncertain '{bad}': expected LOW:HIGH"):
            parse_band(bad)


@pytest.mark.slow
def test_scan_with_a_band_reports_uncertain_in_every_format_and_exits_zero(clips, tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    args = ["scan", str(clips / "wide.mp4"), str(clips / "still.png")]
    high = round(FAKE_P + 0.001, 4)  # just above what the fake student gives: every input lands in the band
    out = tmp_path / "scan.json"
    result = runner.invoke(app, [*args, *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--uncertain", f"0.5:{high}", "--out", str(out))])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["uncertain"] == [0.5, high]
    assert doc["summary"] == {"inputs": 2, "fake": 0, "real": 0, "errors": 0, "uncertain": 2}
    assert {r["verdict"] for r in doc["inputs"]} == {"UNCERTAIN"} and all(r["flagged"] == 0 for r in doc["inputs"])

    result = runner.invoke(app, [*args, *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--uncertain", f"0.5:{high}", "--csv")])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4 + 1 and {r["verdict"] for r in rows} == {"UNCERTAIN"}
    result = runner.invoke(app, [*args, *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--uncertain", "0.2:0.9")])
    assert result.exit_code == 1 and "FAKE" in result.output and "UNCERTAIN <" in result.output, result.output

    result = runner.invoke(app, [*args, *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--csv")])
    assert result.exit_code == 1 and result.stdout.splitlines()[0] == "path,index,time,score,status,error,segment", "no band: no verdict column"
    result = runner.invoke(app, [*args, *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--uncertain", "0.9:0.2")])
    assert result.exit_code == 2 and "--uncertain '0.9:0.2': expected LOW:HIGH" in result.output


def _watch(detector: Detector, rule: AlertRule, size: tuple[int, int] = (64, 48), crops: str = "center", **settings) -> list[dict]:
    target = StreamTarget("rtsp://cam/live", "rtsp://cam/live", "network")
    out = io.StringIO()
    watch = Watch(engine(detector, crops=crops), [target], WatchSettings(SourceSettings(fps=2), rule, **settings), EventLog(out))
    watch.events.emit("watch_start", settings=watch._settings_record())
    for index in range(4):
        watch.mailbox.offer(LiveFrame(target.id, index, index / 2, index / 2, time.time(), time.monotonic(), noise(index, *size)))
        watch.step(0.0)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.slow
def test_watch_reports_an_uncertain_window_once_and_alerts_only_from_high(tiny_config, tiny_adm_ckpt, fake_student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=fake_student_ckpt))
    high = FAKE_P + 0.001
    events = _watch(detector, AlertRule(window_s=10, raise_at=high, clear_at=0.5, min_frames=2, uncertain=(0.5, high)))
    kinds = [e["event"] for e in events]
    assert kinds.count("window_uncertain") == 1 and "alert_raised" not in kinds
    (entered,) = [e for e in events if e["event"] == "window_uncertain"]
    assert entered["score"] == pytest.approx(FAKE_P, abs=1e-4) and entered["frames"] == 2 and (entered["low"], entered["high"]) == (0.5, high)

    events = _watch(detector, AlertRule(window_s=10, raise_at=0.9, clear_at=0.2, min_frames=2, uncertain=(0.2, 0.9)))
    (raised,) = [e for e in events if e["event"] == "alert_raised"]
    assert raised["verdict"] == "FAKE" and "window_uncertain" not in [e["event"] for e in events]


# --- crops ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("height", "width", "count"), [(480, 640, 2), (1080, 1920, 3), (90, 160, 3), (100, 100, 1), (300, 1200, 7), (640, 360, 3)])
def test_cover_squares_cover_the_whole_frame_overlapping_by_half(height, width, count):
    boxes = cover_boxes(height, width)
    assert len(boxes) == count
    seen = np.zeros((height, width), int)
    for x, y, w, h in boxes:
        assert w == h == min(height, width) and 0 <= x <= width - w and 0 <= y <= height - h
        seen[y : y + h, x : x + w] += 1
    assert seen.min() >= 1, "every pixel lies in some square"
    starts = sorted(b[0] if width >= height else b[1] for b in boxes)
    assert all(b - a <= min(height, width) / 2 for a, b in zip(starts, starts[1:]))


def test_box_crops_take_the_pixels_of_their_box():
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[:, :40] = 255  # white on the left only
    x = preprocess_boxes([frame], [cover_boxes(90, 160)], 32)
    assert x.shape == (3, 3, 32, 32)
    assert x[0, :, :, :8].min() > 1 - 1e-5 and x[0, :, :, -8:].max() < -1 + 1e-5, "the first square has white on its left, black on its right"
    assert x[2].max() < -1 + 1e-5, "the last square (x 70..160) is all black"


@pytest.mark.slow
def test_center_mode_keeps_outputs_and_cover_scores_are_their_best_crop(clips, tiny_config, tiny_adm_ckpt, student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    (center,) = scan(detector, [clips / "wide.mp4"])
    assert "crop" not in center.to_dict()["frames"][0], "the default output has no crop fields"
    (cover,) = scan(detector, [clips / "wide.mp4"], crops="cover")
    assert [f.index for f in cover.frames] == [f.index for f in center.frames]
    for frame in cover.frames:
        assert [c["box"] for c in frame.crops] == [[0, 0, 90, 90], [35, 0, 90, 90], [70, 0, 90, 90]]
        best = max(frame.crops, key=lambda c: c["score"])
        assert frame.score == best["score"] and frame.crop == best["box"]
    image = noise(7, 64, 48)  # the still image: score each cover square on its own through the center rule
    (still,) = scan(detector, [clips / "still.png"], crops="cover")
    alone = [detector.score(detector.preprocess([image[:, x : x + 48]])).item() for x in (0, 16)]
    assert [c["score"] for c in still.frames[0].crops] == pytest.approx(alone, rel=1e-4)


@pytest.mark.slow
def test_cover_crops_of_yuv_planes_match_the_rgb_path(clips, tiny_config, tiny_adm_ckpt, student_ckpt):
    """On a GPU frames reach the crops as YUV planes; the same boxes and scores (within docs/design.md's scan tolerance) as from rgb24."""
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    (rgb,) = scan(detector, [clips / "wide.mp4"], crops="cover", planes=False)
    (yuv,) = scan(detector, [clips / "wide.mp4"], crops="cover", planes=True)
    assert [[c["box"] for c in f.crops] for f in yuv.frames] == [[c["box"] for c in f.crops] for f in rgb.frames]
    for a, b in zip(yuv.frames, rgb.frames, strict=True):
        assert [c["score"] for c in a.crops] == pytest.approx([c["score"] for c in b.crops], abs=2e-3)


def test_faces_refuse_yuv_planes_and_nvdec_in_one_line(clips, tiny_config, tiny_adm_ckpt, student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    for how in ({"planes": True}, {"decoder": "nvdec"}):
        with pytest.raises(ConfigError, match="--crops faces finds faces in RGB frames on the CPU"):
            scan(detector, [clips / "face.mp4"], crops="faces", **how)


@pytest.mark.slow
def test_watch_with_cover_crops_scores_each_frame_by_its_best_square(tiny_config, tiny_adm_ckpt, student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    rule = AlertRule(window_s=10, raise_at=0.99, clear_at=0.5, min_frames=2)
    events = _watch(detector, rule, (160, 90), log_frames=True, crops="cover")
    assert events[0]["settings"]["crops"] == "cover"
    frames = [e for e in events if e["event"] == "frame"]
    assert len(frames) == 4
    for event in frames:  # each square scored on its own through the centre rule
        image = noise(event["index"], 160, 90)
        alone = {x: detector.score(detector.preprocess([image[:, x : x + 90]])).item() for x in (0, 35, 70)}
        best = max(alone, key=alone.get)
        assert event["score"] == pytest.approx(alone[best], rel=1e-4) and event["crop"] == [best, 0, 90, 90]
    with pytest.raises(ConfigError, match="crops: expected one of 'center', 'cover' or 'faces'"):
        engine(detector, crops="edges")


@needs_cascades
def test_faces_are_found_with_a_margin_and_a_faceless_frame_falls_back_to_the_center():
    kind, boxes = crop_boxes(drawn_face(), "faces")
    assert kind == "face" and len(boxes) == 1
    x, y, w, h = boxes[0]
    assert w == h and x <= FACE_CENTER[0] - 60 and x + w >= FACE_CENTER[0] + 60 and y <= FACE_CENTER[1] - 60 <= FACE_CENTER[1] + 60 <= y + h
    assert crop_boxes(noise(1, 320, 180), "faces") == ("center", [center_box(180, 320)])


@needs_cascades
def test_scan_with_faces_reports_per_face_boxes_and_scores(clips, tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    out = tmp_path / "faces.json"
    result = runner.invoke(app, ["scan", str(clips / "face.mp4"), *_tiny(tiny_adm_ckpt, fake_student_ckpt, "--crops", "faces", "--out", str(out))])
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["crops"] == "faces"
    frames = doc["inputs"][0]["frames"]
    assert len(frames) == 3
    for frame in frames:
        (face,) = frame["crops"]
        x, y, w, h = face["box"]
        assert face["kind"] == "face" and x < FACE_CENTER[0] < x + w and y < FACE_CENTER[1] < y + h
        assert frame["crop"] == face["box"] and frame["score"] == face["score"]


def test_an_unknown_crop_mode_is_one_line_naming_it(clips, tiny_adm_ckpt, student_ckpt):
    result = runner.invoke(app, ["scan", str(clips / "still.png"), *_tiny(tiny_adm_ckpt, student_ckpt, "--crops", "edges")])
    assert result.exit_code == 2 and "--crops: expected one of 'center', 'cover' or 'faces', got str 'edges'" in result.output
