"""DIRE as a detection method: its classifier against the reference's torchvision ResNet-50 and PIL preprocessing,
its checkpoints in the registry, and `scan` / `eval` with `--method dire` and `both` on generated media."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torchvision import transforms
from torchvision.transforms import v2  # noqa: F401  (transforms.v2)
from torchvision.models import resnet50
from typer.testing import CliRunner

from streamdet import weights
from streamdet.cli import app
from streamdet.config import load_config
from streamdet.detector import Detector
from streamdet.errors import ConfigError, WeightsError
from streamdet.models.adm import load_adm
from streamdet.models.dire import DIREClassifier, load_dire_classifier

from .checkpoints import random_dire_classifier, save_dire_classifier
from .media import make_video, write_image
from .trainingdata import make_image_dataset
from .reference import dire_loader, distildire_loader, guided_diffusion_dire

runner = CliRunner()


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _reference_input(image: np.ndarray) -> torch.Tensor:
    """The DIRE reference's classifier input: PIL image → Resize(256) → CenterCrop(224) → ToTensor → ImageNet Normalize."""
    pipeline = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    tensor = pipeline(Image.fromarray(image))
    return transforms.functional.normalize(tensor, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def _reference_tensor_input(image: np.ndarray) -> torch.Tensor:
    """The same steps with torchvision's tensor transforms on the uint8 image (its resize differs from PIL's by a level
    here and there, see test_dire_classifier_resizes_like_the_reference)."""
    pipeline = transforms.v2.Compose([
        transforms.v2.Resize(256, antialias=True),
        transforms.v2.CenterCrop(224),
        transforms.v2.ToDtype(torch.float32, scale=True),
        transforms.v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    return pipeline(torch.from_numpy(image).permute(2, 0, 1))


@pytest.mark.parametrize("wrapped", [True, False])
def test_dire_checkpoint_gives_the_reference_logits(tmp_path, wrapped):
    net = random_dire_classifier(seed=4)
    reference = resnet50(weights=None, num_classes=1).eval()
    reference.load_state_dict(net.state_dict())
    path = save_dire_classifier(tmp_path / "lsun_adm.pth", net, wrapped=wrapped)
    classifier = load_dire_classifier(path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = reference(torch.stack([_reference_input(i) for i in images])).squeeze(1)
        logits = classifier(torch.from_numpy(images).permute(0, 3, 1, 2))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_dire_classifier_resizes_like_the_reference():
    """Other sizes are resized with antialiasing to short side 256 and rounded to 8 bits, as PIL does (±1 level)."""
    classifier = DIREClassifier().eval()
    rng = np.random.default_rng(1)
    for h, w in [(320, 288), (64, 64)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = classifier.prepare(torch.from_numpy(image).permute(2, 0, 1)[None])[0]
        assert ours.shape == (3, 224, 224)
        assert (ours - _reference_input(image)).abs().max() <= 1.01 / 255 / 0.224


@pytest.mark.parametrize("name, file", [("dire-lsun-adm", "lsun_adm.pth"), ("dire-imagenet-adm", "imagenet_adm.pth"), ("dire-celebahq-sdv2", "celebahq_sdv2.pth")])
def test_dire_checkpoints_are_manual_downloads(tmp_path, monkeypatch, name, file):
    """Not cached: one line saying where to get the file and where to put it, and no download attempted; cached: used."""
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a manual checkpoint must never be downloaded")

    monkeypatch.setattr(weights, "_fetch", no_download)
    where = tmp_path / "weights" / file
    with pytest.raises(WeightsError) as caught:
        weights.resolve(name)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}: checkpoint {file} is not cached")
    assert "https://rec.ustc.edu.cn/share/" in message and f"put it at {where}" in message and "--dire" in message
    with pytest.raises(WeightsError, match="cannot be downloaded automatically"):
        weights.fetch_all([name])
    where.parent.mkdir(parents=True)
    save_dire_classifier(where, random_dire_classifier())
    assert weights.resolve(name) == where
    assert isinstance(load_dire_classifier(weights.resolve(name)), DIREClassifier)


# --- scan and watch with --method -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dire_config(tmp_path_factory, tiny_config) -> Path:
    """The tiny config with 2 DDIM steps for DIRE (20 would cost minutes on a CPU), as a YAML file."""
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, dire_steps=2))
    data = dataclasses.asdict(config)
    data.pop("source")
    path = tmp_path_factory.mktemp("config") / "dire.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def classifiers(ckpt_dir) -> dict[str, Path]:
    """DIRE classifiers in the official format: a random one, one that calls everything fake (logit 6)."""
    return {
        "random": save_dire_classifier(ckpt_dir / "dire_random.pth", random_dire_classifier(seed=5)),
        "fake": save_dire_classifier(ckpt_dir / "dire_fake.pth", random_dire_classifier(seed=6, bias=6.0), wrapped=False),
    }


def _reference_score(image: np.ndarray, cfg, adm: Path, classifier: Path) -> float:
    """The DIRE reference's P(fake) of an image: its loader (`center_crop_arr`), guided-diffusion's DDIM over 2 steps,
    its quantization, and its classifier (torchvision ResNet-50) reading the DIRE image."""
    unet = load_adm(cfg.adm, adm)
    x = torch.from_numpy(dire_loader(image, cfg.adm.image_size)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        _, recon = guided_diffusion_dire(unet, 2, cfg.adm, x)
        dire = (torch.abs(x - recon) * 255 / 2).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        reference = resnet50(weights=None, num_classes=1).eval()
        reference.load_state_dict(torch.load(classifier, weights_only=True)["model"])
        return torch.sigmoid(reference(_reference_tensor_input(dire)[None])).item()


def test_scan_method_dire_gives_the_reference_score(tmp_path, dire_config, tiny_config, tiny_adm_ckpt, classifiers):
    """An image's score is the reference's: its loader, guided-diffusion's DDIM, the DIRE quantization, torchvision ResNet-50."""
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.integers(0, 256, (24, 12, 3), dtype=np.uint8), (97, 203), interpolation=cv2.INTER_CUBIC)
    path = write_image(tmp_path / "frame.png", image)
    result = runner.invoke(app, ["scan", str(path), "--config", str(dire_config), "--adm", str(tiny_adm_ckpt), "--method", "dire", "--dire", str(classifiers["random"]), "--json", "--quiet"])
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.output)
    assert doc["settings"]["method"] == "dire" and doc["settings"]["methods"] == ["dire"]
    frame = doc["inputs"][0]["frames"][0]
    assert "scores" not in frame and "methods" not in doc["inputs"][0]

    expected = _reference_score(image, tiny_config, tiny_adm_ckpt, classifiers["random"])
    assert 0.02 < expected < 0.98, "the random classifier should not saturate, or the comparison says little"
    assert frame["score"] == pytest.approx(expected, abs=1e-3)  # float32 rounding differs between a batch and one image


def test_scan_method_both_reports_each_method(tmp_path, dire_config, tiny_adm_ckpt, real_student_ckpt, classifiers):
    """`both`: DistilDIRE's verdict on top (here REAL: the student says sigmoid(-6)), DIRE's beside it (FAKE: sigmoid(6))."""
    video = make_video(tmp_path / "clip.mp4", 12, (80, 64), 6)
    out = tmp_path / "both.csv"
    args = ["scan", str(video), "--config", str(dire_config), "--adm", str(tiny_adm_ckpt), "--student", str(real_student_ckpt), "--dire", str(classifiers["fake"]), "--method", "both", "--quiet"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["settings"]["methods"] == ["distildire", "dire"]
    r = doc["inputs"][0]
    assert r["verdict"] == "REAL" and r["score"] == pytest.approx(1 / (1 + math.exp(6)), rel=1e-3)
    assert r["methods"]["distildire"]["verdict"] == "REAL" and r["methods"]["dire"]["verdict"] == "FAKE"
    assert r["methods"]["dire"]["score"] == pytest.approx(1 / (1 + math.exp(-6)), rel=1e-3) and r["methods"]["dire"]["flagged"] == 4
    assert len(r["frames"]) == 4 and all(f["scores"]["distildire"] == f["score"] for f in r["frames"])
    assert all(f["scores"]["dire"] > 0.99 for f in r["frames"])
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 4 and all(float(row["score_dire"]) > 0.99 and float(row["score_distildire"]) < 0.01 for row in rows)


def test_both_methods_each_read_their_own_preprocessing(dire_config, tiny_adm_ckpt, student_ckpt, classifiers):
    """With `both`, the student reads DistilDIRE's loading of the frames and DIRE reads its reference's, from one upload;
    each method's score is its model's on its own tensor."""
    detector = Detector.load(load_config(dire_config, {"weights.adm": str(tiny_adm_ckpt), "weights.student": str(student_ckpt), "device": "cpu", "method": "both", "weights.dire": str(classifiers["random"])}))
    rng = np.random.default_rng(8)
    frames = [cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC) for h, w in [(181, 321), (203, 97)]]
    x = detector.preprocess(frames)
    assert set(x) == {"distildire", "dire"}
    dire_x = torch.stack([torch.from_numpy(dire_loader(f, 64)).permute(2, 0, 1).float() / 127.5 - 1 for f in frames])
    torch.testing.assert_close(x["distildire"], torch.stack([distildire_loader(f, 64) for f in frames]), rtol=0, atol=1e-5)
    assert torch.equal(x["dire"], dire_x)
    with torch.inference_mode():
        by = {m: {rule: b.logits(t, b.noise(t)) for rule, t in x.items()} for m, b in detector.backends.items()}
    for method in ("distildire", "dire"):
        torch.testing.assert_close(detector.logits(x, method), by[method][method], rtol=0, atol=1e-5)
        other = "dire" if method == "distildire" else "distildire"
        assert (by[method][other] - by[method][method]).abs().max() > 1e-3, "the other rule's tensor would give other logits"
    assert set(detector.scores(x)) == {"distildire", "dire"}
    crops, layout = detector.preprocess_crops(frames, "cover")
    assert set(crops) == {"distildire", "dire"} and len(crops["dire"]) == len(crops["distildire"]) == sum(len(boxes) for _, boxes in layout)


def test_dire_runs_in_fp32_whatever_the_precision(dire_config, tiny_adm_ckpt, classifiers):
    """bf16 autocast of the UNet moves the 8-bit DIRE image far (see README, Precision): DIRE runs the UNet, the DDIM
    arithmetic and the classifier in fp32 at any --precision, even inside a caller's autocast; the UNet's output in bf16
    does differ, so the comparison can tell."""
    dire = {"weights.adm": str(tiny_adm_ckpt), "device": "cpu", "method": "dire", "weights.dire": str(classifiers["random"])}
    fp32 = Detector.load(load_config(dire_config, {**dire, "precision": "fp32"}))
    bf16 = Detector.load(load_config(dire_config, {**dire, "precision": "bf16"}))
    assert bf16.precision == "fp32" and bf16.backend.precision == "fp32"
    rng = np.random.default_rng(11)
    x = bf16.preprocess([cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (80, 64), interpolation=cv2.INTER_CUBIC)])
    with torch.inference_mode():
        expected = fp32.logits(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = bf16.logits(x)
            unet = fp32.backend.dire.predict(x, fp32.backend.dire.embeddings[:1])
    assert torch.equal(bf16.logits(x), expected) and torch.equal(inside, expected)
    assert not torch.equal(unet, fp32.backend.dire.predict(x, fp32.backend.dire.embeddings[:1])), "autocast reaches the UNet when not turned off"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "dire", "--backend", "onnxruntime"], "the dire method runs on --backend torch or compile, not onnxruntime"),
        (["--method", "sideways"], "--method: expected one of 'distildire', 'dire' or 'both', got str 'sideways'"),
        (["--method", "dire", "--dire", "missing.pth"], "missing.pth: no such checkpoint file or registered name"),
    ],
)
def test_scan_method_errors_are_one_line(tmp_path, dire_config, tiny_adm_ckpt, classifiers, extra, message):
    image = write_image(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    args = ["scan", str(image), "--config", str(dire_config), "--adm", str(tiny_adm_ckpt), "--dire", str(classifiers["fake"]), "--quiet", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output and result.output.strip().count("\n") == 0, result.output


def test_method_setting_is_validated(tiny_config):
    assert dataclasses.replace(tiny_config, method="dire").method == "dire"
    assert dataclasses.replace(tiny_config, method="both").method == "both"  # scan runs both; watch refuses it below
    with pytest.raises(ConfigError, match="^invalid setting: method: expected one of 'distildire', 'dire' or 'both', got str 'sideways'$"):
        dataclasses.replace(tiny_config, method="sideways")
    result = runner.invoke(app, ["watch", "x.mp4", "--config", "tiny", "--method", "both", "--realtime", "--quiet"])
    assert result.exit_code == 2 and "--method both: watch runs one method" in result.output


# --- eval --method dire ---------------------------------------------------------------------------------------------


def test_eval_method_dire_scores_each_cached_dire_like_the_reference(tmp_path, dire_config, tiny_adm_ckpt, classifiers):
    """Missing DIREs are computed (and cached as prepare caches them); each image's score is the reference classifier's
    reading of its DIRE PNG through PIL; the per-generator table has each generator; a second run reads the cache."""
    root = make_image_dataset(tmp_path / "ds", 2, {"gan": 2, "sd": 1})
    args = ["eval", str(root), "--config", str(dire_config), "--adm", str(tiny_adm_ckpt), "--method", "dire", "--dire", str(classifiers["random"]), "--quiet"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["method"] == "dire" and doc["student"] == str(classifiers["random"])
    assert set(doc["images"]["generators"]) == {"gan", "sd"} and doc["images"]["all"]["n_real"] == 2 and doc["images"]["all"]["n_fake"] == 3
    reference = resnet50(weights=None, num_classes=1).eval()
    reference.load_state_dict(torch.load(classifiers["random"], weights_only=True)["model"])
    pngs = sorted((root / "cache" / "dire").rglob("*.png"))
    assert len(pngs) == 5
    stamps = [p.stat().st_mtime_ns for p in pngs]
    with torch.no_grad():
        for scored in doc["scores"]:
            dire = np.asarray(Image.open(root / "cache" / "dire" / f"{scored['name']}.png").convert("RGB"))
            expected = torch.sigmoid(reference(_reference_input(dire)[None])).item()
            assert scored["score"] == pytest.approx(expected, abs=0.02)  # PIL's upsampling differs by a level here and there
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "streamdet eval: dire" in table.output and "gan" in table.output and "sd" in table.output
    assert [p.stat().st_mtime_ns for p in pngs] == stamps, "the cached DIREs are read, not made again"
