"""The ADM-free lite detector (`distill-lite`, `compress quantize` of it) and the cascade (`scan`/`watch --cascade`), with the
tiny config on generated frames."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamdet.cascade import FULL, LITE, Cascade
from streamdet.cli import app
from streamdet.detector import Detector
from streamdet.models.compressed import QuantConv2d
from streamdet.models.lite import LiteDetector, load_lite
from streamdet.models.student import load_student
from streamdet.pipeline import scan
from streamdet.train.dataset import load_items, read_rgb
from streamdet.video import Sampling, iter_frames
from streamdet.video.decode import to_rgb

from .checkpoints import save_student
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
    middle = p_lite.sort().values[len(p_lite) // 2 - 1 : len(p_lite) // 2 + 1].tolist()
    triage = sum(middle) / 2  # between two frames: the cascade's batches round the lite logits differently in the last bits
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


# --- a teacher whose scores on these frames are not saturated, its lite detector, and that one quantized ---------------


def _distill(dataset: Path, teacher: Path, adm: Path, out: Path) -> Path:
    result = runner.invoke(
        app,
        ["distill-lite", str(dataset), "--teacher-student", str(teacher), "--adm", str(adm), "-c", "tiny", "--epochs", "8", "--batch", "8", "--lr", "0.001", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def centred_full(tmp_path_factory, tiny_config, tiny_adm_ckpt, student_ckpt, full, frames) -> tuple[Detector, Path]:
    """`student_ckpt` with its head rescaled so that the full pipeline's logits on these frames have mean 0 and
    std 1.5 (the random student saturates them near P = 0, where every lite score would be the same)."""
    logits = full.logits(full.preprocess(frames))
    scale = 1.5 / float(logits.std())
    student = load_student(student_ckpt)
    head = student.student_head[2]
    with torch.no_grad():
        head.weight.mul_(scale)
        head.bias.sub_(float(logits.mean())).mul_(scale)
    path = save_student(tmp_path_factory.mktemp("centred") / "student.pth", student)
    return Detector.load(tiny_config, adm=tiny_adm_ckpt, student=path), path


@pytest.fixture(scope="module")
def centred_lite(tmp_path_factory, dataset, tiny_adm_ckpt, centred_full) -> Path:
    return _distill(dataset, centred_full[1], tiny_adm_ckpt, tmp_path_factory.mktemp("centred-lite") / "lite.pth")


@pytest.fixture(scope="module")
def quantized_lite(tmp_path_factory, dataset, centred_lite) -> Path:
    out = tmp_path_factory.mktemp("lite-q") / "lite-q4.pth"
    result = runner.invoke(app, ["compress", "quantize", str(centred_lite), "--dataset", str(dataset), "-c", "tiny", "--bits", "4", "--steps", "10", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "quantize of the lite detector" in text and "max |ΔP| against the original" in text
    return out


def test_quantized_lite_round_trips_through_the_cascade_close_to_the_full_precision_lite(quantized_lite, centred_lite, centred_full, frames):
    raw = torch.load(quantized_lite, weights_only=True)
    assert raw["lite"]["backbone"] == "resnet18" and raw["compression"]["steps"][0]["bits"] == 4
    assert any(key.endswith(".weight_codes") for key in raw["model"]), "quantized weights are stored as packed codes"
    loaded, meta = load_lite(quantized_lite)
    inner = [m for m in loaded.modules() if isinstance(m, QuantConv2d) and m.w_quant.bits == 4]
    assert len(inner) >= 15, "every inner convolution of the ResNet-18 is quantized to 4 bits"
    for layer in inner:
        steps = layer.w_quant.step.detach().view(-1, 1, 1, 1)
        codes = layer.weight.detach() / steps
        assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.round().min() >= -8 and codes.round().max() <= 7

    full, _ = centred_full
    x = full.preprocess(frames)
    original, _ = load_lite(centred_lite)
    with torch.no_grad():
        p_original = torch.sigmoid(original(x))
    assert float(p_original.max() - p_original.min()) > 0.1, "the full-precision lite scores spread: the comparison means something"
    pending = Cascade.load(full, quantized_lite, 1.0).score_async(x)  # triage 1: the lite model scores every frame
    p_quantized = torch.tensor(pending.result())
    assert pending.scored_by == [LITE] * len(frames)
    difference = (p_quantized - p_original).abs()
    assert float(difference.mean()) < 0.03 and float(difference.max()) < 0.08, difference


def test_compress_refuses_to_prune_a_lite_detector(tmp_path, dataset, lite_ckpt):
    result = runner.invoke(app, ["compress", "prune", str(lite_ckpt), "--dataset", str(dataset), "-c", "tiny", "-o", str(tmp_path / "x.pth"), "-q"])
    assert result.exit_code == 2
    assert "only quantize applies to it" in result.output and not (tmp_path / "x.pth").exists()


def test_watch_with_cascade_marks_each_frame_event_with_the_model_its_lite_score_chose(tmp_path, frames, quantized_lite, centred_full, tiny_adm_ckpt):
    """A --realtime file through `watch --cascade` (the quantized lite model): a frame whose lite P is below --triage is
    scored by the lite model with that P, any other by the full pipeline with its P (both computed here directly)."""
    full, teacher = centred_full
    lite, _ = load_lite(quantized_lite)
    shuffled = np.random.default_rng(0).permutation(len(frames))  # real and fake frames mixed irregularly: whichever frames watch picks, both kinds come
    images = [cv2.resize(frames[i], (64, 64), interpolation=cv2.INTER_AREA) for i in shuffled]
    clip = make_video(tmp_path / "clip.mp4", 2 * len(images), (64, 64), 8, pattern=lambda i, w, h: images[i % len(images)])
    with av.open(str(clip)) as container:
        decoded = [to_rgb(frame) for frame in container.decode(video=0)]
    x = full.preprocess(decoded)
    with torch.no_grad():  # one frame per call, as watch scores one stream: 4-bit codes make the last digits batch-dependent
        p_lite = torch.cat([torch.sigmoid(lite(x[i : i + 1])) for i in range(len(x))])
    p_full = torch.cat([full.score(x[i : i + 1]) for i in range(len(x))])
    ranked = sorted(p_lite.tolist())
    gap, triage = max((b - a, (a + b) / 2) for a, b in zip(ranked[4:-5], ranked[5:-4]))
    assert gap > 0.002, f"no clear triage score between the clip's lite scores {ranked}"

    events = tmp_path / "events.jsonl"
    args = ["watch", str(clip), "--realtime", "--fps", "8", "--log-frames", "-q", "-c", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(teacher)]
    result = runner.invoke(app, [*args, "--cascade", str(quantized_lite), "--triage", str(triage), "--events", str(events)])
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    scored = [e for e in logged if e["event"] == "frame"]
    assert len(scored) >= 4
    for event in scored:
        i = event["index"]
        expected = LITE if p_lite[i] < triage else FULL
        assert event["scored_by"] == expected, (event, float(p_lite[i]), triage)
        assert event["score"] == pytest.approx(float((p_lite if expected == LITE else p_full)[i]), abs=1e-4), (event, float(p_lite[i]), float(p_full[i]))
    assert {e["scored_by"] for e in scored} == {LITE, FULL}


def test_scan_with_cascade_and_cover_crops_names_the_model_of_each_frames_best_crop(tmp_path, centred_lite, centred_full):
    """Each crop goes to the lite or the full model by its own lite score; the frame's score and `scored_by` are its best crop's."""
    full, lite_ckpt = centred_full[0], centred_lite
    video = make_video(tmp_path / "wide.mp4", 4, (160, 64), 4, pattern=lambda i, w, h: np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8))
    decoded = list(iter_frames(video, Sampling(mode="all")))
    x, layout = full.preprocess_crops([f.image for f in decoded], "cover")
    lite, _ = load_lite(lite_ckpt)
    with torch.no_grad():
        p_lite = torch.sigmoid(lite(x))
    p_full = full.score(x)
    highest = p_lite.view(len(decoded), -1).max(1).values  # each frame's highest crop by the lite model
    triage = float(highest.min() + highest.max()) / 2  # the lowest frame stays lite, the highest escalates a crop
    (result,) = scan(Cascade.load(full, lite_ckpt, triage), [video], sampling=Sampling(mode="all"), crops="cover")
    assert len(result.frames) == len(decoded) and all(len(boxes) == 4 for _, boxes in layout)
    row = 0
    models = set()
    for frame, (_, boxes) in zip(result.frames, layout):
        crops = range(row, row + len(boxes))
        expected = [float(p_full[i]) if p_lite[i] >= triage else float(p_lite[i]) for i in crops]
        top = max(range(len(boxes)), key=expected.__getitem__)
        assert frame.score == pytest.approx(expected[top], abs=1e-5)
        assert frame.scored_by == (FULL if p_lite[row + top] >= triage else LITE)
        models.add(frame.scored_by)
        row += len(boxes)
    assert LITE in models and bool((p_lite >= triage).any())
