"""The quantized ADM (`--precision int8|fp8` for the noise model): int8 calibrated on frames and run by ONNX Runtime
on the CPU, its error measured where it matters (eps against fp32, and the final scores); fp8 refused off fp8 GPUs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.config import Config
from streamdet.detector import Detector
from streamdet.export.exporter import export_models
from streamdet.export.metadata import BatchRange
from streamdet.runtime.factory import precisions
from streamdet.train.dataset import load_items, read_rgb

from .checkpoints import save_adm
from .media import write_image
from .trainingdata import make_image_dataset
from .engines import configured

pytestmark = [pytest.mark.slow]

runner = CliRunner()


@pytest.fixture(scope="module")
def small(tiny_config) -> Config:
    """The tiny config with one level fewer (its ONNX export takes half the time)."""
    return dataclasses.replace(tiny_config, adm=dataclasses.replace(tiny_config.adm, channel_mult="1,2"), batch=6)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    return make_image_dataset(tmp_path_factory.mktemp("calibration"), 6, {"gen": 6}, size=64, seed=7)


@pytest.fixture(scope="module")
def adm(tmp_path_factory, small) -> Path:
    return save_adm(tmp_path_factory.mktemp("adm") / "small_adm.pt", small.adm)


@pytest.fixture(scope="module")
def engines(tmp_path_factory, small, adm, student_ckpt, frames) -> Path:
    """The noise model at int8, calibrated on `frames`, exported as ONNX."""
    folder = tmp_path_factory.mktemp("engines")
    export_models(small, "onnx", "int8", BatchRange.around(small.batch), folder, adm=adm, student=student_ckpt, models=["noise"], calibrate=frames)
    return folder


def test_the_int8_noise_graph_holds_int8_weights_and_activations(engines):
    """ONNX Runtime's CPU layout (measured fastest, benchmarks/bench_int8_adm.py): QLinearConv on uint8 activations with
    int8 weights kept to 7 bits, so that the u8×s8 pair sums of CPUs without VNNI cannot saturate."""
    graph = onnx.load(str(engines / "noise-int8.onnx")).graph
    ops = [node.op_type for node in graph.node]
    convolutions = ops.count("QLinearConv")
    assert convolutions > 10 and ops.count("Conv") == 0, "every convolution runs on int8"
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    initial = {init.name: init for init in graph.initializer}
    for node in (n for n in graph.node if n.op_type == "QLinearConv"):
        x_zero, weight = initial[node.input[2]], initial[node.input[3]]
        assert x_zero.data_type == onnx.TensorProto.UINT8, "activations are unsigned int8"
        assert weight.data_type == onnx.TensorProto.INT8
        codes = onnx.numpy_helper.to_array(weight)
        assert codes.min() >= -64 and codes.max() <= 64, "weights keep to 7 bits"


def test_int8_noise_model_tracks_fp32_on_eps_and_on_the_final_scores(engines, small, adm, student_ckpt, frames):
    """The error where it matters: eps against the fp32 noise model, and P(fake) of the student reading either eps."""
    images = [read_rgb(frames / item.path) for item in load_items(frames)]
    reference = Detector.load(configured(small, adm=adm, student=student_ckpt))
    x = reference.preprocess(images)
    session = onnxruntime.InferenceSession(str(engines / "noise-int8.onnx"), providers=["CPUExecutionProvider"])
    eps_int8 = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    eps_fp32 = reference.noise(x)
    relative = float((eps_int8 - eps_fp32).norm() / eps_fp32.norm())
    assert 1e-3 < relative < 0.35  # quantized (not the fp32 graph by mistake), and within int8's error on this random UNet
    student = reference.backend.student
    with torch.no_grad():
        dp = (torch.sigmoid(student(x, eps_int8)) - torch.sigmoid(student(x, eps_fp32))).abs()
    assert float(dp.max()) < 0.01


def test_int8_runs_the_exported_noise_model_beside_an_int8_student_unless_told(small):
    config = dataclasses.replace(small, precision="int8")
    cpu = torch.device("cpu")
    assert precisions("onnxruntime", config, cpu, None) == ("int8", "int8")
    assert precisions("onnxruntime", config, cpu, "fp32") == ("int8", "fp32")


def test_int8_noise_model_needs_an_exported_file(tmp_path, tiny_adm_ckpt, student_ckpt):
    image = write_image(tmp_path / "x.png", np.zeros((64, 64, 3), np.uint8))
    result = runner.invoke(app, ["scan", str(image), "-c", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--precision", "int8", "-q"])
    assert result.exit_code == 2
    assert "--precision int8 runs a quantized ADM from exported files" in result.output


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9), reason="this GPU runs fp8; the refusal is for machines without one")
def test_fp8_is_refused_with_one_line_where_the_gpu_cannot_run_it(tmp_path, tiny_adm_ckpt, student_ckpt):
    image = write_image(tmp_path / "x.png", np.zeros((64, 64, 3), np.uint8))
    result = runner.invoke(app, ["scan", str(image), "-c", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt), "--precision", "fp8", "--backend", "tensorrt", "-q"])
    assert result.exit_code == 2
    assert "fp8 needs an NVIDIA GPU of compute capability 8.9 or newer" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_int8_export_of_a_graph_with_external_weights_gives_the_same_model(tmp_path, monkeypatch, small, adm, student_ckpt, frames, engines):
    """The full-size ADM is over 2 GB, so its fp32 graph keeps its weights in `<file>.data`: with the threshold at
    zero the small ADM takes that path, and its int8 export must hold the same weights as the one that did not."""
    import streamdet.export.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    folder = tmp_path / "engines"
    (path,) = export_models(small, "onnx", "int8", BatchRange.around(small.batch), folder, adm=adm, student=student_ckpt, models=["noise"], calibrate=frames)
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".onnx", ".data")) == [path.name]  # no staging leftovers
    ours = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    reference = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(engines / path.name)).graph.initializer}
    assert ours.keys() == reference.keys()
    assert all(np.array_equal(ours[k], reference[k]) for k in reference)
