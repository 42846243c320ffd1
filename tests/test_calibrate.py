"""`streamdet calibrate`: the threshold for a target false-positive rate, its Wilson interval, and the config it writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.calibrate import calibrate, threshold_for_fpr, wilson, write_config
from streamdet.cli import app
from streamdet.config import load_config
from streamdet.detector import Detector
from streamdet.engine import Engine

from .engines import configured
from .media import write_image

runner = CliRunner()


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("hits", "total", "low", "high"), [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 100, 0.0018, 0.0545)])
def test_wilson_interval_matches_published_values(hits, total, low, high):
    rate = wilson(hits, total)
    assert (rate.low, rate.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_threshold_flags_at_most_the_allowed_share_of_real_scores():
    scores = [0.1, 0.4, 0.3, 0.9, 0.8]
    assert threshold_for_fpr(scores, 0.2) == pytest.approx(0.85)  # one of five may reach it: midway between 0.9 and 0.8
    assert threshold_for_fpr(scores, 0.5) == pytest.approx(0.6)  # two of five
    assert threshold_for_fpr(scores, 0.0) == math.nextafter(0.9, 1.0)  # none
    assert threshold_for_fpr([0.5, 0.5, 0.1], 0.34) == math.nextafter(0.5, 1.0), "a tie at the edge flags neither"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("calibrate")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    for i in range(5):
        write_image(root / "real" / f"r{i}.png", noise(i, 64, 48))
    for i in range(3):
        write_image(root / "fake" / f"f{i}.png", noise(100 + i, 64, 48))
    return root


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _models(adm: Path, student: Path) -> list[str]:
    return ["--adm", str(adm), "--student", str(student), "--quiet"]


def _fakes(folder: Path, config: Path, models: list[str]) -> list[str]:
    result = runner.invoke(app, ["scan", str(folder), "--config", str(config), "--json", *models])
    return [r["path"] for r in json.loads(result.stdout)["inputs"] if r["verdict"] == "FAKE"]


@pytest.mark.slow
def test_calibrated_config_keeps_false_positives_at_the_target(folders, tiny_adm_ckpt, student_ckpt, tmp_path):
    models = _models(tiny_adm_ckpt, student_ckpt)
    out = tmp_path / "my.yaml"
    result = runner.invoke(app, ["calibrate", str(folders / "real"), "--fake", str(folders / "fake"), "--fpr", "0.2", "--config", "tiny", "--out", str(out), *models])
    assert result.exit_code == 0, result.output
    cfg = load_config(out)
    assert cfg.adm == load_config("tiny").adm and cfg.sampling == load_config("tiny").sampling, "the base config is kept"
    assert "false positives on" in result.output and "1/5 = 0.2000 (95% Wilson interval 0.0362 to 0.6245)" in result.output
    assert len(_fakes(folders / "real", out, models)) == 1, "floor(0.2 · 5) = 1 real input reaches the threshold"
    detector = Detector.load(configured(load_config("tiny"), tiny_adm_ckpt, student_ckpt))
    direct = [detector.score(detector.preprocess([read_rgb(p)])).item() for p in sorted((folders / "fake").glob("*.png"))]
    flagged = sum(score >= cfg.threshold for score in direct)  # each image through the models directly, not through scan
    assert f"true positives on {folders / 'fake'}: {flagged}/3" in result.output
    assert len(_fakes(folders / "fake", out, models)) == flagged


@pytest.mark.slow
def test_an_unreadable_real_input_stops_calibration_and_writes_nothing(folders, tiny_adm_ckpt, student_ckpt, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    write_image(real / "good.png", noise(1, 64, 48))
    (real / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "my.yaml"
    result = runner.invoke(app, ["calibrate", str(real), "--config", "tiny", "--out", str(out), *_models(tiny_adm_ckpt, student_ckpt)])
    assert result.exit_code == 2 and "broken.mp4" in result.output and "1 of the 2 real inputs could not be scored" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["calibrate", str(tmp_path / "missing"), "--config", "tiny", "--out", str(out), *_models(tiny_adm_ckpt, student_ckpt)])
    assert result.exit_code == 2 and "missing: no such real folder or file" in result.output and not out.exists()


class _Where:
    """A path-like object that is not a pathlib.Path (os.PathLike is all the public API asks for)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


@pytest.mark.slow
def test_python_api_takes_str_and_any_pathlike(folders, tiny_adm_ckpt, student_ckpt, tmp_path):
    """`calibrate(det, "real/", 0.01, "fake/")` as the README shows it, with str paths and with other os.PathLike objects."""
    engine = Engine.load(configured(load_config("tiny"), tiny_adm_ckpt, student_ckpt, device="cpu"))
    by_str = calibrate(engine, str(folders / "real"), 0.2, str(folders / "fake"))
    by_pathlike = calibrate(engine, _Where(folders / "real"), 0.2, _Where(folders / "fake"))
    assert (by_str.real.hits, by_str.real.total, by_str.fake.total) == (1, 5, 3), "floor(0.2 · 5) = 1 of 5 real inputs flagged"
    assert (by_pathlike.real.hits, by_pathlike.fake.total) == (1, 3) and by_pathlike.scores.keys() == by_str.scores.keys()
    assert by_pathlike.threshold == pytest.approx(by_str.threshold, rel=1e-4)  # frames batched differently round differently
    write_config(by_str, "tiny", str(tmp_path / "by-str.yaml"))
    write_config(by_pathlike, "tiny", _Where(tmp_path / "by-pathlike.yaml"))
    assert load_config(tmp_path / "by-str.yaml").threshold == by_str.threshold
    assert load_config(tmp_path / "by-pathlike.yaml").threshold == by_pathlike.threshold
