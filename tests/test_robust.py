"""Robustness: degradations (JPEG, rescale, blur, noise, H.264/HEVC re-encode), `eval --degrade`, and augmented copies for training."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.config import AugmentConfig, AugmentRange
from streamdet.detector import Detector
from streamdet.errors import ConfigError, DatasetError
from streamdet.train import load_items, prepare, train
from streamdet.train.augment import Augment
from streamdet.train.cache import Cache
from streamdet.train.dataset import read_rgb
from streamdet.train.samples import Samples
from streamdet.video.degrade import add_noise, blur, encode, jpeg, parse, reencode, rescale

from .checkpoints import random_student, save_student
from .media import index_bars, read_index
from .test_train import configured, write_config
from .trainingdata import make_image_dataset, save_teacher
from .engines import configured as model_settings

OFF = AugmentRange(0.0, 0, 0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    return save_teacher(tmp_path_factory.mktemp("teacher") / "resnet50.pth")


@pytest.fixture(scope="module")
def sensitive_student(tmp_path_factory) -> Path:
    """A random student whose logits on the test images lie around 0, so that a changed frame changes its score visibly."""
    student = random_student(seed=1)
    with torch.no_grad():
        student.student_head[2].bias += 16.5
    return save_student(tmp_path_factory.mktemp("student") / "sensitive.pth", student)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


def checkerboard(h: int, w: int) -> np.ndarray:
    return np.repeat((np.indices((h, w)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)


def test_frame_degradations_do_what_they_name():
    board = checkerboard(32, 48)
    flat = np.full((32, 48, 3), 90, np.uint8)
    assert np.abs(rescale(board, 0.5).astype(int) - 127.5).max() <= 1  # a 1-pixel pattern cannot survive half resolution
    assert np.array_equal(rescale(flat, 0.5), flat) and rescale(board, 0.75).shape == board.shape
    assert np.abs(blur(board, 2.0).astype(int) - 127.5).max() <= 2 and np.array_equal(blur(flat, 2.0), flat)
    assert np.array_equal(blur(board, 0), board)
    noisy = add_noise(np.full((64, 64, 3), 128, np.uint8), 5.0, np.random.default_rng(0))
    assert 4.5 < (noisy.astype(float) - 128).std() < 5.5
    photo = cv2.resize(np.random.default_rng(1).integers(0, 255, (8, 12, 3), dtype=np.uint8), (96, 64), interpolation=cv2.INTER_CUBIC)
    assert psnr(jpeg(photo, 95), photo) > psnr(jpeg(photo, 30), photo) > psnr(jpeg(photo, 5), photo)
    assert psnr(jpeg(photo, 95), photo) > 35


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_reencode_keeps_frame_order_and_odd_sizes_and_loses_more_at_higher_crf(codec):
    w, h = 65, 49
    indices = [100 + 37 * i for i in range(5)]
    clip = [cv2.GaussianBlur(index_bars(i, w, h), (0, 0), 0.7) for i in indices]
    light, heavy = reencode(clip, codec, 18), reencode(clip, codec, 45)
    assert [f.shape for f in light] == [(h, w, 3)] * 5 and len(heavy) == 5
    assert [read_index(f) for f in light] == indices
    error = [np.mean([(a.astype(float) - b) ** 2 for a, b in zip(out, clip)]) for out in (light, heavy)]
    assert 0 < 4 * error[0] < error[1]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_reencoding_one_clip_again_gives_the_same_bytes_and_pixels(codec):
    """`eval --degrade h264:N` and prepare's copies are repeatable: the same clip re-encoded five times, two of them at
    once, gives one bitstream and one set of pixels; for H.264 x264 says it runs one thread without assembly (its
    AVX-512 code and its C code with frame threads give other bits on other calls)."""
    rng = np.random.default_rng(4)
    base = cv2.resize(rng.integers(0, 256, (10, 16, 3), dtype=np.uint8), (160, 96), interpolation=cv2.INTER_CUBIC)
    clip = [np.clip(np.roll(base, 3 * i, axis=1).astype(int) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8) for i in range(8)]
    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture() as logs:
            first = encode(clip, codec, 34)
    finally:
        av.logging.set_level(level)
    with ThreadPoolExecutor(max_workers=2) as pool:
        others = [first, *pool.map(lambda _: encode(clip, codec, 34), range(4))]
    assert len({hashlib.sha256(data).hexdigest() for data in others}) == 1
    pixels = [reencode(clip, codec, 34) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*pixels)) and not np.array_equal(pixels[0][0], clip[0])
    if codec == "h264":
        assert any("using cpu capabilities: none!" in message for _, _, message in logs), logs
        assert b" threads=1 " in first  # the options x264 records in its SEI


def test_degrade_spec_is_every_combination_and_bad_specs_are_one_line_errors(tmp_path):
    assert [d.name for d in parse("jpeg:95,75")] == ["jpeg:95", "jpeg:75"]
    assert [d.name for d in parse("scale:0.5,0.75+h264:28")] == ["scale:0.5+h264:28", "scale:0.75+h264:28"]
    combo = parse("scale:0.5+hevc:30")[0]
    assert (combo.kind, combo.strength) == ("scale+hevc", "0.5+30")
    for spec, words in [("jpeg:0", "JPEG quality must be in [1, 100]"), ("h264:60", "CRF"), ("vp9:30", "unknown degradation 'vp9'"), ("blur", "needs strengths"), ("noise:x", "not a number")]:
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
            parse(spec)
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--student", "x.pth", "--degrade", "h264:99", "--quiet"])
    assert result.exit_code == 2 and "--degrade 'h264:99': H.264 CRF must be in [0, 51], not 99" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _scan_scores(paths: list[Path], config: Path, adm: Path, student: Path) -> dict[str, float]:
    result = CliRunner().invoke(app, ["scan", *map(str, paths), "--config", str(config), "--adm", str(adm), "--student", str(student), "--json", "--quiet"])
    return {Path(r["path"]).name: r["score"] for r in json.loads(result.stdout)["inputs"]}  # names are unique: f000.png, real-f000.jpg …


def test_eval_degrade_scores_the_degraded_frame_as_scan_scores_a_degraded_file(tmp_path, tiny_config, tiny_adm_ckpt, sensitive_student):
    student_ckpt = sensitive_student
    root = make_image_dataset(tmp_path / "data", 3, {"g": 3})
    config = write_config(tmp_path / "tiny.yaml", tiny_config)
    plot = tmp_path / "ap.png"
    args = ["eval", str(root), "--student", str(student_ckpt), "--adm", str(tiny_adm_ckpt), "--config", str(config), "--quiet"]
    out = CliRunner().invoke(app, [*args, "--degrade", "jpeg:30", "--degrade", "blur:0", "--json", "--plot", str(plot)])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    rows = {r["degradation"]: r for r in doc["rows"]}
    assert list(rows) == ["clean", "jpeg:30", "blur:0"]
    assert rows["jpeg:30"]["series"] == "jpeg:30" and rows["jpeg:30"]["images"]["all"]["n_real"] == 3

    # Independent: the same images written by OpenCV as JPEG at quality 30, scanned as files (decode, eps, student).
    images = [root / r["name"] for r in rows["clean"]["scores"]]
    jpegs = []
    for image in images:
        jpegs.append(tmp_path / "jpeg" / f"{image.parent.name}-{image.stem}.jpg")
        jpegs[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(jpegs[-1]), cv2.imread(str(image)), [cv2.IMWRITE_JPEG_QUALITY, 30])
    scanned = _scan_scores(images + jpegs, config, tiny_adm_ckpt, student_ckpt)
    clean, compressed = scanned, scanned
    for image, jpg, c, j, b in zip(images, jpegs, rows["clean"]["scores"], rows["jpeg:30"]["scores"], rows["blur:0"]["scores"]):
        assert c["score"] == pytest.approx(clean[image.name], abs=1e-5)
        assert j["score"] == pytest.approx(compressed[jpg.name], abs=1e-5)
        assert b["score"] == c["score"]  # blur with sigma 0 is no blur
    assert max(abs(compressed[j.name] - clean[i.name]) for i, j in zip(images, jpegs)) > 1e-4  # the check can tell them apart
    change = rows["jpeg:30"]["change"]["images"]["ap"]
    assert change == pytest.approx(rows["jpeg:30"]["images"]["average"]["ap"] - rows["clean"]["images"]["average"]["ap"])

    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and cv2.imread(str(plot)).shape[1] > 300
    table = CliRunner().invoke(app, [*args, "--degrade", "noise:0"])
    assert table.exit_code == 0 and "noise:0" in table.stdout and "clean" in table.stdout and "Δ" in table.stdout
    lonely = CliRunner().invoke(app, [*args, "--plot", str(tmp_path / "p.png")])
    assert lonely.exit_code == 2 and "--degrade" in lonely.output and not (tmp_path / "p.png").exists()


def test_prepare_caches_augmented_copies_with_the_eps_of_the_degraded_frame(tmp_path, tiny_config, tiny_adm_ckpt, student_ckpt, teacher, caplog):
    root = make_image_dataset(tmp_path / "data", 2, {"g": 2})
    augment = AugmentConfig(scale=OFF, blur=OFF, noise=OFF, jpeg=OFF, hevc=OFF, h264=AugmentRange(1.0, 40, 45))
    config = configured(tiny_config, teacher, kd=False, copies=2, augment=augment, epochs=1, batch=4, val_fraction=0.0)
    report = prepare(root, config, adm=tiny_adm_ckpt, dire=False)
    assert (report.eps, report.copies) == (4, 8)
    cache, detector = Cache(root), Detector.load(model_settings(config, adm=tiny_adm_ckpt, student=student_ckpt))
    for item in load_items(root):
        clean = detector.preprocess(read_rgb(root / item.path))[0]
        for copy in (1, 2):
            x, eps = cache.load_copy(item, copy)
            assert (x - clean).abs().mean() > 0.005  # CRF 40+ changed the frame …
            assert torch.allclose(eps, detector.noise(x[None])[0], atol=2e-2)  # … and the eps is that frame's, not the clean one's
            assert not torch.allclose(eps, cache.load_eps(item), atol=2e-2)
    assert prepare(root, config, adm=tiny_adm_ckpt, dire=False).copies == 0  # resumable: nothing left to do

    samples = Samples(root, load_items(root), cache, 64, augment=Augment(flip_prob=0.0, jpeg_prob=0.0), seed=3, copies=2)
    seen = set()
    for epoch in range(12):
        samples.epoch = epoch
        sample = samples[0]
        versions = [cache.load_copy(samples.items[0], k) for k in (1, 2)]
        seen.add(next((k for k, (x, eps) in enumerate(versions, 1) if torch.equal(sample["x"], x) and torch.equal(sample["eps"], eps)), 0))
    assert seen == {0, 1, 2}  # the clean frame and both copies are drawn, each with its own eps
    assert len(train(root, config, tmp_path / "run").epochs) == 1

    other = dataclasses.replace(config, train=dataclasses.replace(config.train, augment=dataclasses.replace(augment, h264=AugmentRange(1.0, 30, 30))))
    with pytest.raises(DatasetError, match="other train.augment settings.*streamdet prepare"):
        train(root, other, tmp_path / "run2")
    assert prepare(root, other, adm=tiny_adm_ckpt, dire=False).copies == 8 and "making them again" in caplog.text
    bad = dataclasses.replace(config, train=dataclasses.replace(config.train, augment=dataclasses.replace(augment, h264=AugmentRange(1.0, 30, 60))))
    with pytest.raises(ConfigError, match="train.augment.h264.max: H.264 CRF must be in"):
        prepare(root, bad, adm=tiny_adm_ckpt, dire=False)


def test_frames_of_one_video_are_degraded_together_in_frame_order():
    from streamdet.train.copies import groups
    from streamdet.train.dataset import Item

    items = [Item("real/v.mp4.000020.png", 0, "real", "real/v.mp4", 20), Item("real/x.png", 0, "real"), Item("real/v.mp4.000003.png", 0, "real", "real/v.mp4", 3)]
    assert [[i.path for i in g] for g in groups(items)] == [["real/v.mp4.000003.png", "real/v.mp4.000020.png"], ["real/x.png"]]
