"""The ADM-free lite detector (`distill-lite`) and the cascade (`scan --cascade`), with the tiny config on generated frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamdet.cascade import FULL, LITE, Cascade
from streamdet.cli import app
from streamdet.detector import Detector
from streamdet.models.lite import LiteDetector, load_lite
from streamdet.train.dataset import load_items, read_rgb

from .media import make_video
from .trainingdata import make_image_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_image_dataset(tmp_path_factory.mktemp("lite-data"), 8, {"gen": 8}, size=64, seed=4)


@pytest.fixture(scope="module")
def lite_ckpt(tmp_path_factory, dataset, tiny_adm_ckpt, student_ckpt) -> Path:
    out = tmp_path_factory.mktemp("lite") / "lite.pth"
    result = runner.invoke(
        app,
        ["distill-lite", str(dataset), "--teacher-student", str(student_ckpt), "--adm", str(tiny_adm_ckpt), "-c", "tiny", "--epochs", "8", "--batch", "8", "--lr", "0.001", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "same side of the threshold" in result.output
    return out


@pytest.fixture(scope="module")
def full(tiny_config, tiny_adm_ckpt, student_ckpt) -> Detector:
    return Detector.load(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt)


@pytest.fixture(scope="module")
def frames(dataset) -> list[np.ndarray]:
    return [read_rgb(dataset / item.path) for item in load_items(dataset)]


def test_lite_checkpoint_is_plain_data_and_loads_through_the_weights_loader(lite_ckpt):
    raw = torch.load(lite_ckpt, weights_only=True)
    assert raw["lite"]["backbone"] == "resnet18" and raw["lite"]["image_size"] == 64
    model, meta = load_lite(lite_ckpt)
    assert isinstance(model, LiteDetector) and meta["frames"] + meta["val_frames"] == 16


def test_distilled_lite_imitates_the_full_pipeline_better_than_its_initialisation(lite_ckpt, full, frames):
    x = full.preprocess(frames)
    target = full.score(x)
    trained, _ = load_lite(lite_ckpt)
    torch.manual_seed(3407)  # distill-lite's seed: the same initial weights
    initial = LiteDetector("resnet18").eval()
    with torch.no_grad():
        err_trained = (torch.sigmoid(trained(x)) - target).abs().mean()
        err_initial = (torch.sigmoid(initial(x)) - target).abs().mean()
    assert err_trained < 0.5 * err_initial


def test_cascade_escalates_exactly_the_frames_at_or_above_triage(lite_ckpt, full, frames):
    x = full.preprocess(frames)
    lite, _ = load_lite(lite_ckpt)
    with torch.no_grad():
        p_lite = torch.sigmoid(lite(x))
    p_full = full.score(x)
    triage = float(p_lite.median())
    pending = Cascade.load(full, lite_ckpt, triage).score_async(x)
    scores = torch.tensor(pending.result())
    escalated = p_lite >= triage
    assert 0 < escalated.sum() < len(frames)
    assert pending.scored_by == [FULL if e else LITE for e in escalated.tolist()]
    torch.testing.assert_close(scores[escalated], p_full[escalated], atol=1e-5, rtol=0)
    torch.testing.assert_close(scores[~escalated], p_lite[~escalated], atol=1e-5, rtol=0)


def test_cascade_at_triage_zero_is_the_full_pipeline(lite_ckpt, full, frames):
    x = full.preprocess(frames)
    cascade = Cascade.load(full, lite_ckpt, 0.0)
    torch.testing.assert_close(cascade.score(x), full.score(x), atol=1e-5, rtol=0)
    assert cascade.escalated == cascade.frames == len(frames)


def test_scan_with_cascade_says_per_frame_which_model_scored_it(tmp_path, lite_ckpt, tiny_adm_ckpt, student_ckpt):
    video = make_video(tmp_path / "clip.mp4", 12, (80, 64), 6)
    args = ["scan", str(video), "-c", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--frames", "6", "--jsonl", "-q"]
    plain = [json.loads(line) for line in runner.invoke(app, args).stdout.splitlines()]
    result = runner.invoke(app, [*args, "--cascade", str(lite_ckpt), "--triage", "0.0"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["scored_by"] for r in rows] == [FULL] * 6
    assert all("scored_by" not in r for r in plain), "without a cascade the rows are as before"
    assert [r["score"] for r in rows] == pytest.approx([r["score"] for r in plain], abs=1e-5)


def test_cascade_refuses_a_file_that_is_not_a_lite_checkpoint(tmp_path, tiny_adm_ckpt, student_ckpt):
    image = tmp_path / "x.png"
    from .media import write_image

    write_image(image, np.zeros((64, 64, 3), np.uint8))
    result = runner.invoke(app, ["scan", str(image), "-c", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--cascade", str(student_ckpt), "-q"])
    assert result.exit_code == 2
    assert f"{student_ckpt}: not a lite detector checkpoint" in result.output
