"""`--decoder cpu|nvdec|auto`: clear errors where NVDEC cannot run (tested here), NVDEC frames = CPU frames (GPU only).

The NVDEC tests at the end need an NVIDIA GPU and torchcodec; they are skipped elsewhere with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from .media import index_bars, make_video, read_index, write_image
from streamdet.cli import app
from streamdet.errors import BackendError, MediaError
from streamdet.video import Sampling, iter_frames
from streamdet.video.nvdec import iter_frames_nvdec, nvdec_problem, resolve_decoder

CUDA = torch.device("cuda")
NO_NVDEC = nvdec_problem(CUDA)


def test_cpu_and_auto_resolve_to_the_cpu_decoder_without_a_gpu() -> None:
    cpu = torch.device("cpu")
    assert resolve_decoder("cpu", cpu) == "cpu"
    assert resolve_decoder("auto", cpu) == "cpu"


def test_nvdec_on_the_cpu_is_one_line_saying_what_works() -> None:
    with pytest.raises(BackendError) as caught:
        resolve_decoder("nvdec", torch.device("cpu"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("--decoder nvdec: the detector runs on cpu")
    assert message.endswith("--decoder cpu works here")


def test_unknown_decoder_is_rejected() -> None:
    with pytest.raises(BackendError, match="--decoder gpu: unknown decoder"):
        resolve_decoder("gpu", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_nvdec_without_cuda_says_so() -> None:
    assert nvdec_problem(CUDA) == "CUDA is not available on this machine"


def test_nvdec_without_torchcodec_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # past the GPU check, to reach the package check
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # None in sys.modules makes the import fail
    assert "torchcodec package is not installed" in nvdec_problem(CUDA)
    with pytest.raises(BackendError, match="torchcodec package is not installed.*--decoder cpu works here"):
        resolve_decoder("nvdec", CUDA)
    assert resolve_decoder("auto", CUDA) == "cpu"


@pytest.mark.parametrize(
    "name, make, problem",
    [
        ("ffv1.mkv", lambda p: make_video(p, 4, codec="ffv1"), "NVDEC does not decode ffv1 video"),
        ("mirrored.mp4", lambda p: make_video(p, 4, hflip=True), "display matrix mirrors the picture"),
        ("still.png", lambda p: write_image(p, index_bars(0, 16, 16)), "NVDEC decodes video files only"),
    ],
)
def test_files_nvdec_cannot_decode_are_named(tmp_path: Path, name: str, make, problem: str) -> None:
    path = make(tmp_path / name)
    with pytest.raises(MediaError) as caught:
        iter_frames_nvdec(path, Sampling(), CUDA, strict=True)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and message.endswith("use --decoder cpu or auto")
    assert iter_frames_nvdec(path, Sampling(), CUDA, strict=False) is None  # auto: the CPU decoder takes the file


def test_scan_command_with_nvdec_here_fails_before_loading_models(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.mp4", 4)
    result = CliRunner().invoke(app, ["scan", str(video), "--config", "tiny", "--device", "cpu", "--decoder", "nvdec"])
    assert result.exit_code == 2
    assert "--decoder nvdec: the detector runs on cpu" in result.output
    assert "--decoder cpu works here" in result.output


@pytest.mark.skipif(NO_NVDEC is not None, reason=f"needs NVDEC: {NO_NVDEC}")
@pytest.mark.parametrize("spec", ["uniform:5", "keyframes", "all"])
def test_nvdec_frames_are_the_cpu_frames(tmp_path: Path, spec: str) -> None:
    path = make_video(tmp_path / "b.mp4", 40, (96, 64), gop=10, rotation=180, options={"bf": "2"})
    cpu = list(iter_frames(path, Sampling.parse(spec)))
    gpu = list(iter_frames_nvdec(path, Sampling.parse(spec), CUDA))
    assert [(f.index, f.time) for f in gpu] == [(f.index, f.time) for f in cpu]
    for host, device in zip(cpu, gpu):
        assert device.image.is_cuda and device.image.shape == (3, *host.image.shape[:2])
        image = device.image.permute(1, 2, 0).cpu().numpy()
        assert read_index(image) == read_index(host.image)  # the same frame, turned the same way
        difference = np.abs(image.astype(float) - host.image)
        assert difference.mean() < 2.0  # NVDEC's colour conversion rounds differently, the frame is the same


@pytest.mark.skipif(NO_NVDEC is not None, reason=f"needs NVDEC: {NO_NVDEC}")
def test_nvdec_scan_scores_agree_with_cpu_decoding(tmp_path, tiny_config, tiny_adm_ckpt, student_ckpt) -> None:
    from streamdet.detector import Detector
    from .engines import configured, scan

    paths = [make_video(tmp_path / f"{n}.mp4", 24, (96, 64), gop=8, rotation=r) for n, r in (("c", 0), ("d", 90))]
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt, device="cuda", precision="fp32"))
    cpu = scan(detector, paths, sampling=Sampling(mode="all"), decoder="cpu", planes=False)
    gpu = scan(detector, paths, sampling=Sampling(mode="all"), decoder="nvdec")
    for a, b in zip(cpu, gpu):
        assert a.status == b.status == "ok"
        assert [(f.index, f.time) for f in a.frames] == [(f.index, f.time) for f in b.frames]
        assert max(abs(fa.score - fb.score) for fa, fb in zip(a.frames, b.frames)) < 2e-3
