"""Backends built from exported files alone, device and precision policy, and what the refusals say."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from streamdet import weights
from streamdet.detector import Detector
from streamdet.device import gpu_precision, pick_precision
from streamdet.errors import BackendError
from streamdet.export.exporter import export_models
from streamdet.export.metadata import BatchRange
from streamdet.export.quantize import _frames
from streamdet.runtime.artifacts import artifact_path, metadata_path
from streamdet.runtime.batching import AdaptiveBatch, is_out_of_memory

from .media import make_video
from .engines import configured


@pytest.fixture(scope="module")
def tiny(tiny_config):
    return dataclasses.replace(tiny_config, device="cpu", batch=4)


@pytest.fixture(scope="module")
def onnx_engines(tmp_path_factory, tiny, tiny_adm_ckpt, student_ckpt):
    folder = tmp_path_factory.mktemp("engines")
    export_models(tiny, "onnx", "fp32", BatchRange(1, 4, 4), folder, adm=tiny_adm_ckpt, student=student_ckpt)
    return folder


@pytest.mark.parametrize(("capability", "expected"), [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_is_bf16_only_where_it_is_native(capability, expected):
    # V100 (7.0) and T4 (7.5) report bf16 support through emulation; A100 (8.0), L4 (8.9) and H100 (9.0) run it natively.
    assert gpu_precision(capability) == expected


def test_auto_precision_on_the_cpu_is_fp32():
    assert pick_precision("auto", torch.device("cpu")) == "fp32"


@pytest.mark.slow
def test_onnxruntime_runs_from_its_files_and_a_published_checksum_alone(monkeypatch, tmp_path, tiny, tiny_adm_ckpt, student_ckpt, onnx_engines):
    """Registered checkpoints with published checksums that are not on this machine: the exported files are enough."""
    eager = Detector.load(configured(tiny, adm=tiny_adm_ckpt, student=student_ckpt))
    for name, path in (("test-adm", tiny_adm_ckpt), ("test-student", student_ckpt)):
        entry = weights.WeightFile(name, "test", f"http://127.0.0.1:9/{name}.pt", 1, "absent on purpose", sha256=weights.file_sha256(path))
        monkeypatch.setitem(weights.REGISTRY, name, entry)
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))  # an empty cache: neither checkpoint is here
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    exported = Detector.load(configured(tiny, adm="test-adm", student="test-student", backend="onnxruntime", engines=onnx_engines))
    assert not hasattr(exported.backend, "noise_model") and not hasattr(exported.backend, "student")
    x = eager.preprocess(np.random.default_rng(5).integers(0, 256, (3, 40, 56, 3), dtype=np.uint8))
    torch.testing.assert_close(exported.logits(x), eager.logits(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_another_checkpoint_is_refused_without_loading_it(tmp_path, tiny, tiny_adm_ckpt, fake_student_ckpt, onnx_engines):
    with pytest.raises(BackendError, match=r"student-fp32.onnx: it was exported from another checkpoint.*rebuild it: streamdet export"):
        Detector.load(configured(tiny, adm=tiny_adm_ckpt, student=fake_student_ckpt, backend="onnxruntime", engines=onnx_engines))


@pytest.mark.slow
def test_a_corrupt_exported_file_whose_metadata_matches_gets_the_rebuild_command(tmp_path, tiny, tiny_adm_ckpt, student_ckpt, onnx_engines):
    folder = tmp_path / "engines"
    folder.mkdir()
    for model in ("noise", "student"):
        path = artifact_path(onnx_engines, model, "fp32", "onnx")
        (folder / path.name).write_bytes(path.read_bytes())
        (folder / metadata_path(path).name).write_text(metadata_path(path).read_text())
    broken = folder / "student-fp32.onnx"
    broken.write_bytes(b"\x08garbage" + broken.read_bytes()[: len(broken.read_bytes()) // 3])
    meta = json.loads(metadata_path(broken).read_text())
    meta["file_sha256"] = weights.file_sha256(broken)  # the metadata still matches the file
    metadata_path(broken).write_text(json.dumps(meta))
    with pytest.raises(BackendError) as raised:
        Detector.load(configured(tiny, adm=tiny_adm_ckpt, student=student_ckpt, backend="onnxruntime", engines=folder))
    message = str(raised.value)
    assert "student-fp32.onnx: ONNX Runtime cannot load it" in message and "rebuild it: streamdet export --format onnx" in message
    assert "\n" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the advice on a machine without CUDA")
def test_tensorrt_without_a_gpu_says_what_works_here():
    from streamdet.runtime.trt import require_cuda

    with pytest.raises(BackendError) as raised:
        require_cuda(torch.device("cpu"))
    assert "--backend onnxruntime" in str(raised.value) and "--device cuda" not in str(raised.value)


def test_onnxruntime_out_of_memory_halves_the_batch():
    """ONNX Runtime's CUDA provider reports an allocation failure as its own exception type, with this text."""

    class RuntimeException(Exception):  # the type onnxruntime's pybind layer raises (not a RuntimeError)
        pass

    error = RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. "
                             "Status Message: Failed to allocate memory for requested buffer of size 268435456")
    assert is_out_of_memory(error) and not is_out_of_memory(RuntimeException("Invalid input name: x"))
    sizes = []

    def run(chunk: torch.Tensor) -> torch.Tensor:
        sizes.append(len(chunk))
        if len(chunk) > 2:
            raise error
        return chunk * 2

    batch = AdaptiveBatch(8)
    out = batch.run(run, torch.arange(7.0))
    assert out.tolist() == [2.0 * i for i in range(7)] and batch.size == 2 and sizes == [7, 4, 2, 2, 2, 1]


def test_int8_calibration_spreads_over_the_folder(tmp_path):
    """8 frames from 4 videos of 30 frames: 2 from each video, not 8 from the first."""
    folder = tmp_path / "calibration"
    folder.mkdir()
    for i in range(4):
        make_video(folder / f"v{i}.mp4", 30, pattern=lambda index, w, h, i=i: np.full((h, w, 3), 50 + 50 * i, np.uint8))
    levels = sorted(round(float(frame.mean()) / 50) for frame in _frames(folder, 8))
    assert len(levels) == 8 and levels == [1, 1, 2, 2, 3, 3, 4, 4]


def test_users_see_only_streamdets_messages(tmp_path):
    """torch's `No CUDA runtime is found, using CUDA_HOME=…` (printed when compile imports its C++ toolchain) and
    library FutureWarnings stay off stderr once the CLI has started without --verbose."""
    script = (
        "import warnings\n"
        "from streamdet.cli import quiet_libraries\n"
        "quiet_libraries()\n"
        "import torch.utils.cpp_extension\n"
        "warnings.warn('deprecated', FutureWarning)\n"
    )
    env = {**os.environ, "CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    loud = subprocess.run([sys.executable, "-c", script.replace("quiet_libraries()\n", "")], env=env, capture_output=True, text=True, check=True)
    assert "FutureWarning" in loud.stderr, "the check needs the warning to appear without it"  # torch's CUDA_HOME line only where this build prints it
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert quiet.stderr == ""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned-buffer, side-stream path runs only on CUDA")
def test_pinned_uploads_and_async_scores_match_the_plain_path(tiny, tiny_adm_ckpt, student_ckpt):
    gpu = Detector.load(configured(dataclasses.replace(tiny, device="cuda", precision="fp32"), adm=tiny_adm_ckpt, student=student_ckpt))
    rng = np.random.default_rng(9)
    batches = [[rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8) for i in range(n)] for n in (3, 5, 2, 4)]
    pending = [gpu.score_async(gpu.preprocess(frames)) for frames in batches]  # more batches than buffers, all in flight
    for frames, scores in zip(batches, pending):
        plain = torch.cat([gpu.score(gpu.preprocess(frame[None])) for frame in frames])
        torch.testing.assert_close(torch.tensor(scores.result()), plain, rtol=1e-5, atol=1e-5)


def test_frame_uploader_on_the_cpu_gives_the_frames_themselves(tiny):
    from streamdet.upload import FrameUploader, PendingScores

    frames = [np.arange(24, dtype=np.uint8).reshape(2, 4, 3), np.full((3, 2, 3), 7, np.uint8)]
    uploaded = FrameUploader(torch.device("cpu")).upload(frames)
    assert [t.numpy().tolist() for t in uploaded] == [f.tolist() for f in frames]
    assert PendingScores(torch.tensor([0.25, 0.5])).result() == [0.25, 0.5]
