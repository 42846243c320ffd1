"""The 4-bit lite file (`compress quantize LITE.pth`) holds what the detector runs and nothing else: no distillation adapter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from streamdet.compress import Settings, quantize_lite
from streamdet.compress.finetune import Fidelity, scores
from streamdet.compress.lite import _samples, frame_inputs
from streamdet.models.lite import LiteDetector, lite_checkpoint, load_lite
from streamdet.train.lite import lite_frames
from streamdet.train.writers import save_torch

from .checkpoints import random_bn_statistics
from .trainingdata import make_image_dataset

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> Path:
    """A random resnet18 lite detector (with its adapter, as `distill-lite` saves it) at the tiny config's 64² input."""
    torch.manual_seed(11)
    model = LiteDetector("resnet18").eval()
    random_bn_statistics(model)
    path = tmp_path_factory.mktemp("lite") / "lite.pth"
    save_torch(path, lite_checkpoint(model, {"image_size": 64, "frames": 16, "val_frames": 4}))
    return path


def test_the_quantized_lite_file_has_no_adapter_and_scores_as_the_quantizer_measured(lite, tmp_path, tiny_config):
    dataset = make_image_dataset(tmp_path / "data", 10, {"gen": 10}, size=64, seed=2)
    out = tmp_path / "lite-q4.pth"
    result = quantize_lite(lite, dataset, tiny_config, out, Settings(bits=4, steps=2, batch=4))
    raw = torch.load(out, weights_only=True)
    assert not [k for k in raw["model"] if k.startswith("adapter.")], "no adapter tensors in the quantized file"
    assert any(k.startswith("adapter.") for k in torch.load(lite, weights_only=True)["model"]), "the full-precision file keeps its adapter"
    assert raw["lite"]["adapter"] is False and out.stat().st_size < 0.7 * lite.stat().st_size
    assert raw["compression"]["steps"][0]["fidelity"] == dataclasses.asdict(result.fidelity)

    quantized, meta = load_lite(out)
    original, _ = load_lite(lite)
    assert quantized.adapter is None and meta["compression"]["bits"]
    _, val = lite_frames(dataset, tiny_config, tiny_config.train.seed)
    held_out = _samples(val, 64)
    _, before = scores(original, held_out, 4, frame_inputs)
    _, after = scores(quantized, held_out, 4, frame_inputs)
    again = Fidelity.between(before, after)
    assert again.n == result.fidelity.n == len(val) and again.mean == pytest.approx(result.fidelity.mean, abs=1e-6), (again, result.fidelity)
    assert again.max == pytest.approx(result.fidelity.max, abs=1e-6)
