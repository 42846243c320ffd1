"""Compressed students (`streamdet compress`): pruning, SVD and LSQ quantization on the tiny config, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.models.resnet import Bottleneck
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.compress import svd
from streamdet.errors import WeightsError
from streamdet.models.compressed import pack_bits, unpack_bits
from streamdet.models.student import load_student
from streamdet.preprocess import preprocess
from streamdet.train import load_items, prepare
from streamdet.train.cache import Cache
from streamdet.train.dataset import read_rgb, train_val

from .checkpoints import fit_head, random_student, save_student
from .trainingdata import make_image_dataset

VARIANTS = {
    "prune": ["prune", "--target", "params", "--ratio", "0.5"],
    "sparse": ["prune", "--sparsity", "0.5"],
    "svd": ["svd", "--flops", "0.9"],
    "quantize": ["quantize", "--bits", "8"],
}


pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_config, tiny_adm_ckpt) -> Path:
    """12 images (fakes carry a colour cast and a checkerboard), eps prepared."""
    root = make_image_dataset(tmp_path_factory.mktemp("compress-data"), 6, {"gan": 6})
    assert prepare(root, tiny_config, adm=tiny_adm_ckpt, dire=False).eps == 12
    return root


def _inputs(root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items, cache = load_items(root), Cache(root)
    x = torch.cat([preprocess(read_rgb(root / i.path), size) for i in items])
    return x, torch.stack([cache.load_eps(i) for i in items]), torch.tensor([float(i.label) for i in items])


@pytest.fixture(scope="module")
def original(dataset, tiny_config, ckpt_dir) -> Path:
    """A random ResNet-50 body with a head fitted on the images (a linear probe): a student that detects the fakes."""
    x, eps, y = _inputs(dataset, tiny_config.adm.image_size)
    return save_student(ckpt_dir / "probe-student.pth", fit_head(random_student(seed=4), x, eps, y))


@pytest.fixture(scope="module")
def compressed(tmp_path_factory, dataset, original) -> dict[str, Path]:
    """Each variant written by `streamdet compress … --steps 2` (a handful of fine-tune steps)."""
    out = tmp_path_factory.mktemp("compressed")
    paths = {}
    for name, args in VARIANTS.items():
        path = out / f"{name}.pth"
        result = CliRunner().invoke(app, ["compress", *args, str(original), "--dataset", str(dataset), "--out", str(path), "--config", "tiny", "--steps", "2", "--batch", "4", "--quiet"])
        assert result.exit_code == 0, result.output
        assert "max |ΔP|" in result.stdout and "compressed" in result.stdout
        paths[name] = path
    return paths


def _dead_channels(student: torch.nn.Module, share: float = 0.5, scale: float = 1e-9) -> torch.nn.Module:
    """Make `share` of each bottleneck's inner channels dead, as training leaves them: their weights, BatchNorm scale and
    shift, and the next layer's weights from them all of size `scale` (not exactly 0, so scores change in the last digits
    and the fine-tune gets gradients). Removing them changes the scores by far less than 1e-6: pruning them is exact."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for block in student.modules():
            if isinstance(block, Bottleneck):
                for conv, bn, following in ((block.conv1, block.bn1, block.conv2), (block.conv2, block.bn2, block.conv3)):
                    k = int(share * conv.out_channels)
                    for tensor in (conv.weight[:k], bn.weight[:k], bn.bias[:k], following.weight[:, :k]):
                        tensor.copy_(scale * torch.randn(tensor.shape, generator=generator))
    return student


def test_the_default_fine_tune_never_moves_an_exact_compression_away_from_the_original(dataset, tmp_path, tiny_config):
    """Dead channels of size 1e-4, the head rescaled so that P on these images spreads over 0.1–0.97 (saturated scores would
    hide any drift): pruning them moves P by about 5e-6 (the convolutions' float rounding); 50 plain Adam steps at lr 1e-5
    (the old fine-tune) moved the held-out mean |ΔP| to 0.06–0.67."""
    x, eps, _ = _inputs(dataset, tiny_config.adm.image_size)
    student = _dead_channels(random_student(seed=4), scale=1e-4)
    with torch.no_grad():
        logits, head = student(x, eps), student.student_head[2]
        gain = 1.5 / float(logits.std())
        head.weight.mul_(gain)
        head.bias.sub_(float(logits.mean())).mul_(gain)
    dead = save_student(tmp_path / "dead.pth", student)
    out = tmp_path / "pruned.pth"
    result = CliRunner().invoke(app, ["compress", "prune", str(dead), "--dataset", str(dataset), "--ratio", "0.9", "--out", str(out), "--config", "tiny", "--quiet"])
    assert result.exit_code == 0, result.output
    n = len(train_val(load_items(dataset), tiny_config.train.val_fraction, tiny_config.train.seed)[1])
    assert f"max |ΔP| against the original: 0.0000 (mean 0.0000, n {n} val images; fine-tune kept step 0" in result.stdout, result.stdout
    assert f"|ΔP| is measured on only {n} held-out images (fewer than 32)" in " ".join(result.output.split()), result.output
    pruned = load_student(out)
    assert pruned.student_backbone.layer1[0].conv1.out_channels < 64, "dead channels are gone"
    with torch.no_grad():
        gap = (torch.sigmoid(pruned(x, eps)) - torch.sigmoid(student(x, eps))).abs().max()
    assert float(gap) <= 1e-5, gap
    (step,) = torch.load(out, weights_only=True)["compression"]["steps"]
    tune = step["finetune"]
    assert step["fidelity"]["n"] == n and step["fidelity"]["max"] <= 1e-5, step["fidelity"]
    assert tune["steps"] == 50 and tune["kept_step"] == 0 and tune["checks"][0][1] <= 1e-5 and tune["ran"] < 50, tune


def test_low_rank_pairs_at_full_rank_are_the_layer_and_codes_pack_losslessly():
    student = random_student(seed=5)
    x, eps = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 3, 64, 64)
    # a strided 3×3 (spatial SVD), a strided 1×1 and the Linear (plain SVD), each at full rank
    full = {"student_backbone.layer2.0.conv2": min(128 * 3, 128 * 3), "student_backbone.layer2.0.downsample.0": 256, "student_head.2": 1}
    with torch.no_grad():
        expected = student(x, eps)
        svd.factorise(student, full)
        got = student(x, eps)
    assert all(isinstance(student.get_submodule(n), torch.nn.Sequential) for n in full)
    assert torch.allclose(got, expected, atol=1e-3 * expected.abs().max().item())
    for bits in (2, 3, 4, 8):
        values = torch.randint(0, 2**bits, (1001,))
        packed = pack_bits(values, bits)
        assert packed.numel() == -(-1001 * bits // 8)
        assert torch.equal(unpack_bits(packed, bits, 1001), values)


def test_checkpoints_say_what_was_done_and_are_smaller(compressed, original):
    plain = torch.load(original, weights_only=True)["model"]
    dense_bytes = sum(v.numel() * v.element_size() for v in plain.values())
    reference = load_student(original)
    for name, path in compressed.items():
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        (step,) = checkpoint["compression"]["steps"]
        assert step["method"] == VARIANTS[name][0] and step["finetune"]["steps"] == 2, step
        model = load_student(path)
        stored = sum(v.numel() * v.element_size() for v in checkpoint["model"].values())
        params = sum(p.numel() for p in model.parameters())
        if name == "prune":
            assert params <= 0.5 * sum(p.numel() for p in reference.parameters())
            assert model.student_backbone.layer4[0].conv1.out_channels < 512
        if name == "sparse":
            weights = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
            zero = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
            assert 0.49 < zero < 0.51
        if name == "svd":
            ranks = checkpoint["compression"]["ranks"]
            assert ranks and all(isinstance(model.get_submodule(n), torch.nn.Sequential) for n in ranks)
        expected_ratio = {"prune": 0.55, "sparse": 0.6, "svd": 1.0, "quantize": 0.3}[name]
        assert stored <= expected_ratio * dense_bytes, (name, stored, dense_bytes)


def _scan(image: Path, student: Path, adm: Path) -> float:
    result = CliRunner().invoke(app, ["scan", str(image), "--config", "tiny", "--adm", str(adm), "--student", str(student), "--json", "--quiet"])
    (scanned,) = json.loads(result.stdout)["inputs"]
    assert scanned["status"] == "ok", result.output
    return scanned["score"]


def test_scan_and_eval_accept_compressed_students_and_mild_ones_stay_close(compressed, original, dataset, tiny_adm_ckpt):
    image = dataset / "fake" / "gan" / "f000.png"
    reference = _scan(image, original, tiny_adm_ckpt)
    scores = {name: _scan(image, path, tiny_adm_ckpt) for name, path in compressed.items()}
    assert all(0.0 <= s <= 1.0 for s in scores.values()), scores
    assert abs(scores["quantize"] - reference) < 0.05, (reference, scores)

    table = CliRunner().invoke(app, ["eval", str(dataset), "--student", str(compressed["quantize"]), "--config", "tiny", "--json", "--quiet"])
    assert table.exit_code == 0, table.output
    full = CliRunner().invoke(app, ["eval", str(dataset), "--student", str(original), "--config", "tiny", "--json", "--quiet"])
    ap = lambda r: json.loads(r.stdout)["images"]["all"]["ap"]  # noqa: E731
    assert ap(full) > 0.9 and abs(ap(table) - ap(full)) <= 0.1, (ap(full), ap(table))


def test_bad_settings_and_impossible_combinations_are_one_line_errors(compressed, dataset):
    runner = CliRunner()
    bits = runner.invoke(app, ["compress", "quantize", str(compressed["svd"]), "--dataset", str(dataset), "--bits", "5", "--config", "tiny", "-q"])
    assert bits.exit_code == 2 and "--bits 5" in bits.output and len(bits.output.strip().splitlines()) == 1
    again = runner.invoke(app, ["compress", "svd", str(compressed["quantize"]), "--dataset", str(dataset), "--energy", "0.9", "--config", "tiny", "-q"])
    assert again.exit_code == 2 and "already quantized" in again.output


def test_a_compression_block_that_does_not_fit_is_a_one_line_error(compressed, tmp_path):
    checkpoint = torch.load(compressed["prune"], map_location="cpu", weights_only=True)
    newer = {**checkpoint, "compression": {**checkpoint["compression"], "format": 99}}
    torch.save(newer, tmp_path / "newer.pth")
    with pytest.raises(WeightsError, match=r"newer\.pth: unknown compression block"):
        load_student(tmp_path / "newer.pth")
    channels = {**checkpoint["compression"]["channels"], "student_backbone.conv1": [7, 6]}
    torch.save({**checkpoint, "compression": {**checkpoint["compression"], "channels": channels}}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsError, match=r"wrong\.pth: does not fit the compressed student \(prune\): student_backbone\.conv1\.weight has shape"):
        load_student(tmp_path / "wrong.pth")


def test_export_accepts_a_compressed_student(compressed, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the onnx extra)")
    result = CliRunner().invoke(app, ["export", "--model", "student", "--config", "tiny", "--student", str(compressed["prune"]), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (onnx,) = tmp_path.glob("student-*.onnx")
    x, eps = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 3, 64, 64)
    got = ort.InferenceSession(str(onnx)).run(None, {"x": x.numpy(), "eps": eps.numpy()})[0]
    with torch.no_grad():
        expected = load_student(compressed["prune"])(x, eps).numpy()
    assert got.shape == expected.shape and abs(got - expected).max() < 1e-3 * max(1.0, abs(expected).max())

