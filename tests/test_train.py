"""Training your own detector: frames → prepare → train → eval, on generated data with the tiny ADM, on the CPU."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torchvision.models import resnet50
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.config import Config
from streamdet.detector import Detector
from streamdet.errors import ConfigError, DatasetError, WeightsError
from streamdet.models.adm import build_diffusion
from streamdet.models.dire import DIRE, quantize
from streamdet.models.student import Student, build_teacher, load_student
from streamdet.preprocess import preprocess
from streamdet.train import evaluate, load_items, prepare, train
from streamdet.train.cache import Cache
from streamdet.train.dataset import read_rgb, split_items, train_val
from streamdet.train.metrics import average_precision, measure
from streamdet.video import Sampling, iter_frames

from .checkpoints import random_adm, random_student, save_adm, save_student
from .media import make_video, write_image
from .reference import guided_diffusion_dire
from .trainingdata import make_image_dataset, save_teacher, texture
from .engines import configured as model_settings

STREAMDET = str(Path(sys.executable).parent / "streamdet")
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.usefixtures("one_torch_thread")]


def configured(base: Config, teacher: Path, **train) -> Config:
    """The tiny config with CPU-sized training settings (2 DDIM steps for DIRE: 20 would cost minutes here)."""
    settings = dict(dire_steps=2, workers=0, teacher=str(teacher), val_fraction=0.25, jpeg_prob=0.5)
    settings.update(train)
    return dataclasses.replace(base, batch=16, train=dataclasses.replace(base.train, **settings))


def write_config(path: Path, config: Config) -> Path:
    """The config as a YAML file, for the command line."""
    data = dataclasses.asdict(config)
    data.pop("source")
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def teacher_file(ckpt_dir: Path) -> Path:
    return save_teacher(ckpt_dir / "resnet50-random.pth")


@pytest.fixture(scope="session")
def learnable(tmp_path_factory, tiny_config, tiny_adm_ckpt, teacher_file) -> Path:
    """32 images, fakes of two generators carrying a colour cast and a checkerboard; eps prepared."""
    root = make_image_dataset(tmp_path_factory.mktemp("learnable"), 16, {"ganA": 8, "ganB": 8})
    report = prepare(root, configured(tiny_config, teacher_file), adm=tiny_adm_ckpt, dire=False)
    assert report.eps == 32 and report.dire == 0 and not report.failed
    return root


@pytest.fixture(scope="session")
def distilled(tmp_path_factory, tiny_config, tiny_adm_ckpt, teacher_file) -> Path:
    """12 images with eps and DIRE prepared: enough for distillation runs."""
    root = make_image_dataset(tmp_path_factory.mktemp("distilled"), 6, {"gan": 6}, seed=1)
    report = prepare(root, configured(tiny_config, teacher_file), adm=tiny_adm_ckpt)
    assert report.eps == 12 and report.dire == 12
    return root


# --- metrics ---------------------------------------------------------------------------------


def test_average_precision_by_hand():
    # ranked: 0.9 (+), 0.8 (−), 0.7 (+), 0.6 (−), 0.5 (+): precision at each positive 1, 2/3, 3/5
    assert average_precision([1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5]) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # a tie between a positive and a negative enters as one threshold: P = 1/2 at R = 1/2, then P = 2/3 at R = 1
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision([0, 1], [0.9, 0.1]) == pytest.approx(0.5)
    assert math.isnan(average_precision([0, 0], [0.3, 0.4]))


def test_accuracy_uses_the_scan_threshold_rule():
    m = measure([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9], threshold=0.5)
    assert (m.acc, m.real_acc, m.fake_acc, m.n_real, m.n_fake) == (0.75, 0.5, 1.0, 2, 2)
    assert measure([0, 0], [0.1, 0.2]).to_dict()["ap"] is None


# --- dataset layout and splits -----------------------------------------------------------------


def test_dataset_layout_and_errors(tmp_path):
    root = make_image_dataset(tmp_path / "ds", 2, {"sdv1": 1})
    (root / "fake" / "plain.png").write_bytes((root / "fake" / "sdv1" / "f000.png").read_bytes())
    items = {i.path: i for i in load_items(root)}
    assert {p: (i.label, i.generator) for p, i in items.items()} == {
        "real/r000.png": (0, "real"),
        "real/r001.png": (0, "real"),
        "fake/plain.png": (1, "fake"),
        "fake/sdv1/f000.png": (1, "sdv1"),
    }
    with pytest.raises(DatasetError, match="real/ and fake/"):
        load_items(tmp_path)
    with pytest.raises(DatasetError, match="no such dataset"):
        load_items(tmp_path / "nope")


def test_split_keeps_groups_together_and_every_stratum_in_val():
    from streamdet.train.dataset import Item

    items = [Item(f"{label}/{g}/v{v}.{f}.png", int(label == "fake"), g, video=f"{label}/{g}/v{v}") for label, g in [("real", "real"), ("fake", "a"), ("fake", "b")] for v in range(4) for f in range(5)]
    split = split_items(items, 0.25, seed=3)
    sides = {}
    for item in split:
        sides.setdefault(item.video, set()).add(item.split)
    assert all(len(s) == 1 for s in sides.values())
    for g in ("real", "a", "b"):
        assert sum(sides[v] == {"val"} for v in sides if f"/{g}/" in v) == 1
    assert split == split_items(items, 0.25, seed=3)
    assert split != split_items(items, 0.25, seed=4)


# --- frames (e) --------------------------------------------------------------------------------


def test_frames_never_splits_a_video_and_eval_reports_videos(tmp_path, tiny_config, tiny_adm_ckpt, student_ckpt):
    src = tmp_path / "videos"
    for rel in ["real/a.mp4", "real/b.mp4", "real/c.mp4", "real/d.mp4", "fake/gen1/e.mp4", "fake/gen1/f.mp4", "fake/gen2/g.mp4", "fake/gen2/h.mp4"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(src / rel, n_frames=8, size=(64, 48))
    (src / "fake" / "gen2" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    dst = tmp_path / "frames"
    result = CliRunner().invoke(app, ["frames", str(src), str(dst), "--frames", "3", "--val-fraction", "0.5", "--seed", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "24 frames from 8 videos" in result.output and "1 videos failed" in result.output
    assert "broken.mp4" in result.output
    records = [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 24
    sides: dict[str, set[str]] = {}
    for r in records:
        assert (dst / r["path"]).is_file()
        assert r["path"].startswith(Path(r["video"]).parent.as_posix() + "/")
        sides.setdefault(r["video"], set()).add(r["split"])
    assert len(sides) == 8 and all(len(s) == 1 for s in sides.values())
    assert {next(iter(s)) for s in sides.values()} == {"train", "val"}
    assert {r["generator"] for r in records if r["label"] == 1} == {"gen1", "gen2"}
    scanned = [f.index for f in iter_frames(src / "real" / "a.mp4", Sampling(mode="uniform", frames=3))]
    assert sorted(r["index"] for r in records if r["video"] == "real/a.mp4") == scanned

    config = write_config(tmp_path / "tiny.yaml", tiny_config)
    out = CliRunner().invoke(app, ["eval", str(dst), "--student", str(student_ckpt), "--adm", str(tiny_adm_ckpt), "--config", str(config), "--json", "--quiet"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert (doc["backend"], doc["student_precision"], doc["change"]) == ("torch", "fp32", None)
    assert doc["images"]["all"]["n_real"] == 12 and doc["images"]["all"]["n_fake"] == 12
    assert set(doc["videos"]["generators"]) == {"gen1", "gen2"}
    assert doc["videos"]["all"]["n_real"] == 4 and doc["videos"]["all"]["n_fake"] == 4
    assert doc["videos"]["generators"]["gen1"]["n_fake"] == 2 and doc["videos"]["generators"]["gen1"]["n_real"] == 4


# --- prepare (c) and DIRE ------------------------------------------------------------------------


def _ddim_by_hand(unet: torch.nn.Module, steps: int, cfg, x: torch.Tensor) -> torch.Tensor:
    """DDIM inversion and reconstruction written out from the formulas, on the respaced schedule, in float64."""
    d = build_diffusion(cfg, f"ddim{steps}")
    abar = torch.tensor(d.alphas_cumprod, dtype=torch.float64)
    timesteps = torch.tensor(d.timestep_map)

    def x0_and_eps(z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = unet(z, timesteps[i].expand(len(z)))[:, :3].double()
        a, b = (1 / abar[i]).sqrt(), (1 / abar[i] - 1).sqrt()
        x0 = (a * z - b * out).clamp(-1, 1)
        return x0, (a * z - x0) / b

    z = x.double()
    for i in range(len(abar)):
        x0, eps = x0_and_eps(z.float(), i)
        nxt = abar[i + 1] if i + 1 < len(abar) else torch.tensor(0.0, dtype=torch.float64)
        z = nxt.sqrt() * x0 + (1 - nxt).sqrt() * eps
    for i in reversed(range(len(abar))):
        x0, eps = x0_and_eps(z.float(), i)
        prev = abar[i - 1] if i > 0 else torch.tensor(1.0, dtype=torch.float64)
        z = prev.sqrt() * x0 + (1 - prev).sqrt() * eps
    return z.float()


def test_dire_is_ddim20_inversion_and_reconstruction(tiny_config):
    cfg = dataclasses.replace(tiny_config.adm, image_size=32)
    unet = random_adm(cfg)
    dire = DIRE(unet, cfg, steps=20)
    assert dire.steps == 20
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).clamp(-0.98, 0.98)
    with torch.no_grad():
        latent, recon = dire.invert(x), dire.reconstruct(x)
        gd_latent, gd_recon = guided_diffusion_dire(unet, 20, cfg, x)
        by_hand = _ddim_by_hand(unet, 20, cfg, x)
        image = dire(x)
    # guided-diffusion's own loops with the same float32 coefficients; the timestep embedding computed once (at batch 1)
    # rounds differently from guided-diffusion's per-batch one (~1e-7), which 40 steps of a random UNet grow to ~5e-4.
    # The formulas in float64 likewise. One step more or less, or no clipping, moves the result by 0.4 or more.
    torch.testing.assert_close(latent, gd_latent, rtol=0, atol=1e-4)
    torch.testing.assert_close(recon, gd_recon, rtol=0, atol=2e-3)
    torch.testing.assert_close(recon, by_hand, rtol=0, atol=2e-3)
    assert image.dtype == torch.uint8 and image.shape == x.shape
    assert (image.int() - quantize(x - gd_recon).int()).abs().max() <= 1
    assert quantize(torch.tensor([0.0, 0.0078, 0.0079, 1.0, 2.0, -2.5])).tolist() == [0, 0, 1, 127, 255, 255]


def test_prepare_resumes_without_recomputing_and_skips_a_corrupt_image(tmp_path, tiny_config, tiny_adm_ckpt, teacher_file):
    root = make_image_dataset(tmp_path / "ds", 3, {"gan": 3})
    (root / "fake" / "gan" / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    config = configured(tiny_config, teacher_file, val_fraction=0.1)
    config = dataclasses.replace(config, batch=2)
    calls = []

    def stop_after_first_batch(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(root, config, adm=tiny_adm_ckpt, progress=stop_after_first_batch)
    cache = Cache(root)
    items = load_items(root)
    finished = [i for i in items if cache.eps_path(i).is_file() and cache.dire_path(i).is_file()]
    assert len(finished) == 2
    stamps = {i.path: (cache.eps_path(i).stat().st_mtime_ns, cache.dire_path(i).stat().st_mtime_ns) for i in finished}
    assert not [p for p in cache.dir.rglob("*") if p.name.endswith(".tmp")]

    errors: list[str] = []
    report = prepare(root, config, adm=tiny_adm_ckpt, on_error=errors.append)
    assert (report.images, report.done_before, report.eps, report.dire) == (7, 2, 4, 4)
    assert len(errors) == 1 and "zz_corrupt.png" in errors[0] and "\n" not in errors[0]
    assert report.failed == errors
    for item in finished:
        assert (cache.eps_path(item).stat().st_mtime_ns, cache.dire_path(item).stat().st_mtime_ns) == stamps[item.path]

    again = prepare(root, config, adm=tiny_adm_ckpt)
    assert (again.eps, again.dire, again.done_before) == (0, 0, 6)
    result = CliRunner().invoke(app, ["prepare", str(root), "--config", str(write_config(tmp_path / "c.yaml", config)), "--adm", str(tiny_adm_ckpt), "--quiet"])
    assert result.exit_code == 0 and "computed 0 eps and 0 DIRE" in result.output

    other = dataclasses.replace(config, train=dataclasses.replace(config.train, dire_steps=3))
    redone = prepare(_with_new_image(root), other, adm=tiny_adm_ckpt)
    assert (redone.done_before, redone.eps, redone.dire) == (0, 7, 7), "made with another dire_steps: all stale"


@pytest.mark.parametrize("steps, nearest", [(1, 2), (999, 1000)])
def test_prepare_refuses_a_dire_step_count_ddim_cannot_make_in_one_line(tmp_path, tiny_adm_ckpt, steps, nearest):
    """guided-diffusion's `ddimN` strides the 1000 steps with an integer stride: 2 is stride 500, 1000 is stride 1, and
    nothing gives 1 or 999. Refused in one line before any work, naming the option."""
    root = make_image_dataset(tmp_path / "ds", 1, {"gan": 1})
    result = CliRunner().invoke(app, ["prepare", str(root), "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--dire-steps", str(steps), "--quiet"])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0, result.output
    assert f"--dire-steps {steps}" in result.output and f"nearest that can: {nearest}" in result.output
    assert "Traceback" not in result.output and not (root / "cache").exists()


def test_prepare_recomputes_when_the_adm_changes_at_the_same_size_or_the_precision_changes(tmp_path, tiny_config, teacher_file, caplog):
    root = make_image_dataset(tmp_path / "ds", 2, {"gan": 1})
    config = configured(tiny_config, teacher_file)
    (tmp_path / "new").mkdir()
    adm = save_adm(tmp_path / "adm.pt", tiny_config.adm, seed=0)
    replacement = save_adm(tmp_path / "new" / "adm.pt", tiny_config.adm, seed=7)  # same name: torch.save stores it
    assert prepare(root, config, adm=adm, dire=False).eps == 3
    cache, item = Cache(root), load_items(root)[0]
    before = cache.load_eps(item)
    assert prepare(root, config, adm=adm, dire=False).eps == 0, "same checkpoint: nothing to do"

    assert replacement.stat().st_size == adm.stat().st_size and replacement.read_bytes() != adm.read_bytes()
    os.replace(replacement, adm)
    with caplog.at_level("WARNING", logger="streamdet"):
        again = prepare(root, config, adm=adm, dire=False)
    assert (again.done_before, again.eps) == (0, 3)
    assert any("another adm_sha256" in r.getMessage() for r in caplog.records)
    after = cache.load_eps(item)
    fresh = Cache(root, tmp_path / "fresh")
    prepare(root, config, adm=adm, cache_dir=fresh.dir, dire=False)
    torch.testing.assert_close(after, fresh.load_eps(item))
    assert not torch.allclose(after, before, atol=1e-3), "the old eps was not reused"

    bf16 = dataclasses.replace(config, precision="bf16")
    assert prepare(root, bf16, adm=adm, dire=False).eps == 3, "another precision: computed again"


def _with_new_image(root: Path) -> Path:
    """Add one image, so that prepare has work to do (and has to check the cache's settings)."""
    write_image(root / "real" / "new.png", texture(np.random.default_rng(9), 64))
    return root


def test_cached_eps_is_the_inference_eps(learnable, tiny_config, tiny_adm_ckpt, student_ckpt):
    item = load_items(learnable)[0]
    detector = Detector.load(model_settings(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    expected = detector.noise(detector.preprocess(read_rgb(learnable / item.path)))[0]
    cached = Cache(learnable).load_eps(item)
    torch.testing.assert_close(cached, expected, rtol=1e-3, atol=2e-3 * expected.abs().max().item())


# --- teacher ---------------------------------------------------------------------------------------


def test_teacher_is_torchvision_resnet50_without_classifier(teacher_file, tmp_path, monkeypatch):
    teacher = build_teacher(teacher_file)
    reference = resnet50(weights=None)
    reference.load_state_dict(torch.load(teacher_file, weights_only=True))
    reference.eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(reference.children())[:-2])(x)
        torch.testing.assert_close(teacher(x), expected)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    with pytest.raises(WeightsError, match="--teacher") as info:
        build_teacher(None)
    assert "\n" not in str(info.value)
    student_file = save_student(tmp_path / "student.pth", random_student())
    with pytest.raises(WeightsError, match="teacher"):
        build_teacher(student_file)


def test_teacher_without_network_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("STREAMDET_OFFLINE", raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a closed port: no download can happen
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's global opener keeps the proxies it is built with
    with pytest.raises(WeightsError, match="cannot download .*--teacher") as info:
        build_teacher(None)
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "torch").rglob("*.pth"))


def test_metrics_go_to_tensorboard_when_it_is_installed(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (it is optional)")
    from streamdet.train.logbook import Logbook

    book = Logbook(tmp_path)
    book.write({"epoch": 1, "train_loss": 0.5, "val_ap": None})
    book.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["train_loss"] == 0.5
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


# --- train (a), checkpoints, eval -------------------------------------------------------------------


def test_training_learns_and_eval_reports_it(learnable, tmp_path, tiny_config, tiny_adm_ckpt, teacher_file):
    config = configured(tiny_config, teacher_file, kd=False, epochs=10, batch=4, lr=1e-3)
    result = train(learnable, config, tmp_path / "run")
    losses = [r["train_loss"] for r in result.epochs]
    assert len(losses) == 10 and result.epochs[-1]["step"] == 60
    assert np.mean(losses[-3:]) < 0.6 * losses[0], result.epochs
    assert result.epochs[-1]["val_ap"] > 0.75 and max(r["val_acc"] for r in result.epochs[-3:]) > 0.6, result.epochs
    assert result.best.is_file() and result.last.is_file()
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == list(range(1, 11))

    ckpt = torch.load(result.last, map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "step", "rng", "config"} <= set(ckpt)
    assert all(k.startswith(("student_backbone.", "student_head.2.")) for k in ckpt["model"])
    assert (ckpt["epoch"], ckpt["step"], ckpt["config"]["train"]["kd"]) == (10, 60, False)
    load_student(result.best)

    report = evaluate(learnable, model_settings(config, student=result.best), split="val")  # held out: the split train drew
    assert set(report.images.generators) == {"ganA", "ganB"}
    assert (report.images.pooled.n_real, report.images.pooled.n_fake) == (4, 4)
    best = max(result.epochs, key=lambda r: (r["val_ap"], -r["val_loss"]))
    assert report.images.pooled.ap == pytest.approx(best["val_ap"]) and report.images.pooled.acc == pytest.approx(best["val_acc"])
    assert report.images.pooled.ap > 0.75 and report.images.pooled.acc > 0.6, report.images
    assert report.videos is None

    cfg_file = write_config(tmp_path / "tiny.yaml", config)
    table = CliRunner().invoke(app, ["eval", str(learnable), "--student", str(result.best), "--config", str(cfg_file), "--quiet"])
    assert table.exit_code == 0, table.output
    assert "ganA" in table.stdout and "Avg" in table.stdout and "AP" in table.stdout
    image = learnable / "fake" / "ganA" / "f000.png"
    scan = CliRunner().invoke(app, ["scan", str(image), "--config", str(cfg_file), "--adm", str(tiny_adm_ckpt), "--student", str(result.best), "--json", "--quiet"])
    (scanned,) = json.loads(scan.stdout)["inputs"]
    with torch.no_grad():  # the trained student on the image and its cached eps (which is the inference eps)
        item = next(i for i in load_items(learnable) if i.path == "fake/ganA/f000.png")
        x = preprocess(read_rgb(image), config.adm.image_size)
        expected = torch.sigmoid(load_student(result.best)(x, Cache(learnable).load_eps(item)[None])).item()
    assert scanned["status"] == "ok" and scanned["score"] == pytest.approx(expected, abs=2e-3)
    assert scan.exit_code == (1 if expected >= config.threshold else 0), (expected, scan.output)


def test_train_refuses_to_overwrite_a_run_and_to_resume_nothing(learnable, tmp_path, tiny_config, teacher_file):
    config = configured(tiny_config, teacher_file, kd=False)
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="nothing|no checkpoint"):
        train(learnable, config, tmp_path / "run", resume=True)
    (tmp_path / "run" / "last.pth").write_bytes(b"x")
    with pytest.raises(ConfigError, match="--resume"):
        train(learnable, config, tmp_path / "run")


def test_kd_without_dire_cache_is_a_clear_error(learnable, tmp_path, tiny_config, teacher_file):
    with pytest.raises(DatasetError, match="run `streamdet prepare` first"):
        train(learnable, configured(tiny_config, teacher_file, epochs=1), tmp_path / "run")


# --- resume (b) -------------------------------------------------------------------------------------


def test_resume_after_an_epoch_gives_the_uninterrupted_weights(distilled, tmp_path, tiny_config, teacher_file):
    config = configured(tiny_config, teacher_file, epochs=2, batch=4, kd_weight=0.5)
    straight = train(distilled, config, tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill(record: dict) -> None:
        raise Killed

    with pytest.raises(Killed):
        train(distilled, config, tmp_path / "resumed", on_epoch=kill)
    first = torch.load(tmp_path / "resumed" / "last.pth", weights_only=True)
    assert first["epoch"] == 1

    cfg_file = write_config(tmp_path / "tiny.yaml", config)
    done = subprocess.run(
        [STREAMDET, "train", str(distilled), "--out", str(tmp_path / "resumed"), "--config", str(cfg_file), "--resume", "--quiet"],
        capture_output=True, text=True, timeout=300, env=ONE_THREAD,
    )
    assert done.returncode == 0, done.stderr
    a = torch.load(straight.last, weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pth", weights_only=True)
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (2, 4)
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    logged = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2]
    assert logged[1]["train_loss"] == straight.epochs[1]["train_loss"]


def test_train_loss_is_bce_plus_weighted_feature_mse(distilled, tmp_path, tiny_config, teacher_file):
    """One epoch of one batch: its losses against BCE and MSE written out here on the initial student's outputs."""
    config = configured(tiny_config, teacher_file, epochs=1, batch=64, kd_weight=0.5, flip_prob=0.0, jpeg_prob=0.0)
    (record,) = train(distilled, config, tmp_path / "run").epochs
    items = train_val(load_items(distilled), config.train.val_fraction, config.train.seed)[0]
    cache = Cache(distilled)
    x = preprocess([read_rgb(distilled / i.path) for i in items], config.adm.image_size)
    eps = torch.stack([torch.from_numpy(np.load(cache.eps_path(i))).float() for i in items])
    dire = torch.stack([torch.from_numpy(cv2.imread(str(cache.dire_path(i)))[..., ::-1].copy()).permute(2, 0, 1) for i in items]).float() / 255 * 2 - 1
    y = torch.tensor([float(i.label) for i in items])
    torch.manual_seed(config.train.seed)  # train builds its student right after seeding: the same initial weights
    student = Student().train()
    with torch.no_grad():
        logits, features = student.forward_features(x, eps)
        target = build_teacher(teacher_file)(dire)
    bce = (torch.nn.functional.softplus(logits) - y * logits).mean().item()  # −y·log σ(l) − (1−y)·log(1−σ(l))
    kd = ((features - target) ** 2).mean().item()
    assert record["step"] == 1 and 0 < y.sum() < len(y)
    assert record["train_bce"] == pytest.approx(bce, rel=1e-4)
    assert record["train_kd"] == pytest.approx(kd, rel=1e-4)
    assert record["train_loss"] == pytest.approx(bce + 0.5 * kd, rel=1e-4)
    assert kd > 0.01 * bce, "the distillation term must weigh in for the sum to mean anything"


# --- DDP (d) ----------------------------------------------------------------------------------------


def test_two_process_ddp_on_cpu_with_torchrun(distilled, tmp_path, tiny_config, teacher_file):
    config = configured(tiny_config, teacher_file, epochs=1, batch=2)
    cfg_file = write_config(tmp_path / "tiny.yaml", config)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
         STREAMDET, "train", str(distilled), "--out", str(tmp_path / "ddp"), "--config", str(cfg_file), "--quiet"],
        capture_output=True, text=True, timeout=300, env=ONE_THREAD,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ddp" / "last.pth", weights_only=True)
    n_train = ckpt["config"]["train_images"]
    assert ckpt["config"]["world"] == 2 and ckpt["epoch"] == 1
    assert ckpt["step"] == math.ceil(math.ceil(n_train / 2) / 2)  # each process saw half the images
    assert done.stdout.count("last checkpoint") == 1  # only rank 0 reports
    load_student(tmp_path / "ddp" / "last.pth")


def test_augmentation_flips_all_maps_together_and_compresses_only_the_image():
    from streamdet.train.augment import Augment

    torch.manual_seed(0)
    x, eps, dire = torch.rand(3, 3, 32, 32) * 2 - 1
    always = Augment(flip_prob=1.0, jpeg_prob=1.0, jpeg_min_quality=30, jpeg_max_quality=30)
    x2, eps2, dire2 = always(always.rng(1, 0, 0), x, eps, dire)
    assert torch.equal(eps2, eps.flip(-1)) and torch.equal(dire2, dire.flip(-1))
    assert 0 < (x2 - x.flip(-1)).abs().mean() < 0.5  # JPEG at quality 30 changes the image, not beyond recognition
    never = Augment(flip_prob=0.0, jpeg_prob=0.0)
    assert all(torch.equal(a, b) for a, b in zip(never(never.rng(1, 0, 0), x, eps, dire), (x, eps, dire)))
    some = Augment()
    draws = [some(some.rng(7, epoch, 3), x, eps)[1] for epoch in range(8)]
    assert torch.equal(some(some.rng(7, 2, 3), x, eps)[1], draws[2])  # same (seed, epoch, index): same augmentation
    assert {torch.equal(d, eps) for d in draws} == {True, False}  # flipped in some epochs, not in others
