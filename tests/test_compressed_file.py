"""A compressed checkpoint whose `compression` block disagrees with its tensors is refused at load, in one line naming the file and the layer."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.compress import prune, quantize, svd
from streamdet.compress.measure import layer_macs
from streamdet.errors import ConfigError, WeightsError
from streamdet.models import compressed
from streamdet.models.student import load_student

from .checkpoints import random_student

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INNER = "student_backbone.layer1.0.conv2"  # a 4-bit layer (not the first or the last)
FACTORISED = "student_backbone.layer1.0.conv1"


def _save(path: Path, model: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """As `compress` writes it: `{"model": stored state, "compression": block}`."""
    torch.save({"model": compressed.encode_state(model, meta), compressed.KEY: meta}, path)
    return path


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> Path:
    """A random student factorised at one layer, then LSQ-quantized to 4 bits (8 at the edges), saved as `compress` saves it."""
    model = random_student(seed=7)
    svd.factorise(model, {FACTORISED: 16})
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    layout, inputs = quantize.plan(model, 4, 8, (x, torch.randn_like(x)))
    quantize.quantize(model, layout, inputs)
    meta = {"format": compressed.FORMAT, "steps": [{"method": "svd"}, {"method": "quantize"}], "ranks": {FACTORISED: 16}, "bits": layout}
    return _save(tmp_path_factory.mktemp("q") / "q4.pth", model, meta)


@pytest.fixture(scope="module")
def sparse(tmp_path_factory) -> Path:
    """A random student with half its weights zeroed by magnitude, stored sparse."""
    model = random_student(seed=8)
    masks = prune.magnitude_masks(model, 0.5)
    prune.apply_masks(model, masks)
    meta = {"format": compressed.FORMAT, "steps": [{"method": "prune"}], "sparse": sorted(masks)}
    return _save(tmp_path_factory.mktemp("s") / "sparse.pth", model, meta)


def _tampered(source: Path, out: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    checkpoint = copy.deepcopy(torch.load(source, weights_only=True))
    edit(checkpoint)
    torch.save(checkpoint, out)
    return out


def _set(part: str, name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c[compressed.KEY][part].__setitem__(name, value)


def _tensor(key: str, change: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["model"].__setitem__(key, change(c["model"][key]))


QUANTIZED_TAMPERS = {
    "bits 4 to 3": (_set("bits", INNER, {"w": 3, "a": 4, "a_signed": False}), "need exactly"),
    "bits 4 to 8": (_set("bits", INNER, {"w": 8, "a": 4, "a_signed": False}), "need exactly"),
    "unknown bits": (_set("bits", INNER, {"w": 5, "a": 4, "a_signed": False}), "must give w and a in 2, 3, 4, 8"),
    "codes too long": (_tensor(f"{INNER}.weight_codes", lambda t: torch.cat([t, t[:1]])), "need exactly"),
    "codes too short": (_tensor(f"{INNER}.weight_codes", lambda t: t[:-1]), "need exactly"),
    "codes not uint8": (_tensor(f"{INNER}.weight_codes", lambda t: t.to(torch.int16)), "of uint8"),
    "negative step": (_tensor(f"{INNER}.w_quant.step", lambda t: -t), "positive finite"),
    "step per tensor": (_tensor(f"{INNER}.w_quant.step", lambda t: t[:1]), "output channels"),
    "codes unlisted": (lambda c: c[compressed.KEY]["bits"].pop(INNER), "does not list it under bits"),
    "rank changed": (_set("ranks", FACTORISED, 12), "need exactly"),
    "rank zero": (_set("ranks", FACTORISED, 0), "must be a positive integer"),
}


SPARSE_LAYER = "student_backbone.layer2.0.conv1"
SPARSE_TAMPERS = {
    "mask too long": (_tensor(f"{SPARSE_LAYER}.weight_mask", lambda t: torch.cat([t, t[:1]])), "need exactly"),
    "a value too many": (_tensor(f"{SPARSE_LAYER}.weight_values", lambda t: torch.cat([t, t[:1]])), "the mask keeps"),
    "a mask bit flipped": (_tensor(f"{SPARSE_LAYER}.weight_mask", lambda t: torch.cat([t[:1] ^ 1, t[1:]])), "the mask keeps"),
}


TAMPERS = [("quantized", name, FACTORISED if name.startswith("rank") else INNER) for name in QUANTIZED_TAMPERS]
TAMPERS += [("sparse", name, SPARSE_LAYER) for name in SPARSE_TAMPERS]


@pytest.mark.parametrize(("kind", "tamper", "layer"), TAMPERS)
def test_a_tampered_file_is_a_one_line_refusal_naming_file_and_layer(request, tmp_path, kind, tamper, layer):
    edit, problem = (QUANTIZED_TAMPERS if kind == "quantized" else SPARSE_TAMPERS)[tamper]
    path = _tampered(request.getfixturevalue(kind), tmp_path / "tampered.pth", edit)
    with pytest.raises(WeightsError) as refused:
        load_student(path)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{path}: ") and problem in message, message
    assert layer in message, message


def test_untampered_files_load_and_give_the_saved_codes(quantized, sparse):
    model = load_student(quantized)
    layer = model.get_submodule(INNER)
    codes = layer.weight.detach() / layer.w_quant.step.detach().view(-1, 1, 1, 1)
    assert torch.allclose(codes, codes.round(), atol=1e-4) and codes.round().min() >= -8 and codes.round().max() <= 7
    weights = [m.weight for m in load_student(sparse).modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert 0.45 < sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights) < 0.55


def test_scan_of_a_tampered_file_exits_non_zero_with_one_line(quantized, tmp_path, tiny_adm_ckpt):
    path = _tampered(quantized, tmp_path / "bits3.pth", QUANTIZED_TAMPERS["bits 4 to 3"][0])
    image = tmp_path / "x.png"
    from .media import write_image

    write_image(image, (torch.rand(64, 64, 3) * 255).to(torch.uint8).numpy())
    result = CliRunner().invoke(app, ["scan", str(image), "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(path), "--quiet"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and INNER in lines[0], result.output


@pytest.mark.slow
def test_an_unreachable_svd_flop_target_names_a_floor_above_the_target():
    student = random_student(seed=3)
    macs = sum(layer_macs(student, 64).values())
    lowest = copy.deepcopy(student)
    svd.factorise(lowest, svd.plan(student, 64, energy=1e-9)[0])  # rank 1 wherever that saves FLOPs: the most factorisation alone can do
    reached = sum(layer_macs(lowest, 64).values()) / macs
    target = float(f"{reached * 0.999:.6g}")  # just below it: the old message rounded the floor down to the target
    with pytest.raises(ConfigError) as refused:
        svd.plan(student, 64, flops=target)
    message = str(refused.value)
    floor = float(re.search(r"the lowest ranks ([0-9.]+)% of the FLOPs remain", message).group(1)) / 100
    assert len(message.splitlines()) == 1 and f"--flops {target}" in message and f"above the {100 * target:g}% asked" in message, message
    assert target < reached <= floor < reached + 1e-4, (reached, floor, message)
