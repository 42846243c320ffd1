"""Checkpoint registry, cache, downloads and the one-line errors for files that are not checkpoints."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import torch

from streamdet.config import load_config
from streamdet.errors import WeightsError
from streamdet.models.adm import load_adm
from streamdet.models.student import load_student
from streamdet.weights import REGISTRY, cached_path, download, resolve

from .checkpoints import save_adm


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `body` for /full, and for /cut promises more bytes than it sends."""

    body = b"x" * 300_000

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body) * (2 if self.path == "/cut" else 1)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_writes_the_file_complete(tmp_path, http_url):
    seen = []
    dest = download(f"{http_url}/full", tmp_path / "w.pt", progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == _Handler.body
    assert seen[-1] == (len(_Handler.body), len(_Handler.body))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_cut_download_leaves_no_file_that_looks_finished(tmp_path, http_url):
    with pytest.raises(WeightsError, match="download"):
        download(f"{http_url}/cut", tmp_path / "w.pt", timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_offline_error_names_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    weight = REGISTRY["adm-256-uncond"]
    with pytest.raises(WeightsError) as info:
        resolve("adm-256-uncond")
    message = str(info.value)
    assert weight.filename in message and weight.url in message and str(cached_path(weight)) in message
    assert "\n" not in message


def test_cached_file_is_used_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    path = cached_path(REGISTRY["distildire-imagenet"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert resolve("distildire-imagenet") == path


def test_missing_local_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="nope.pt: no such checkpoint file"):
        resolve(tmp_path / "nope.pt")


def _bad_files(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a checkpoint\n")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(256)) * 64)
    truncated = tmp_path / "truncated.pt"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    code = tmp_path / "code.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, code)  # a pickled module: code, refused by weights_only
    return {
        "text": (text, "not a PyTorch checkpoint"),
        "noise": (noise, "not a PyTorch checkpoint"),
        "truncated": (truncated, "truncated or corrupt"),
        "empty": (empty, "empty file"),
        "code": (code, "not a PyTorch checkpoint"),
    }


@pytest.mark.parametrize("case", ["text", "noise", "truncated", "empty", "code"])
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, tiny_config, tiny_adm_ckpt, case):
    path, problem = _bad_files(tmp_path, tiny_adm_ckpt)[case]
    for loader in (lambda p: load_adm(tiny_config.adm, p), load_student):
        with pytest.raises(WeightsError) as info:
            loader(path)
        message = str(info.value)
        assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_student_file_given_as_adm_names_the_missing_keys(tiny_config, student_ckpt):
    with pytest.raises(WeightsError, match=r"does not fit the ADM config \(64px, 32 channels\): \d+ missing keys \(first: time_embed"):
        load_adm(tiny_config.adm, student_ckpt)


def test_adm_of_another_architecture_names_the_first_shape_mismatch(tmp_path, tiny_config):
    import dataclasses

    wider = save_adm(tmp_path / "wide.pt", dataclasses.replace(tiny_config.adm, num_channels=64))
    with pytest.raises(WeightsError, match=r"wide.pt: does not fit the ADM config .*has shape \(256, 64\).*needs \(128, 32\)"):
        load_adm(tiny_config.adm, wider)


def test_adm_file_given_as_student_is_refused(tiny_adm_ckpt):
    with pytest.raises(WeightsError, match="does not fit the DistilDIRE student.*missing keys"):
        load_student(tiny_adm_ckpt)


def test_official_checkpoints_load_as_saved(tiny_config, tiny_adm_ckpt, student_ckpt, real_student_ckpt):
    assert isinstance(torch.load(tiny_adm_ckpt, weights_only=True), dict)
    load_adm(tiny_config.adm, tiny_adm_ckpt)
    assert next(iter(torch.load(student_ckpt, weights_only=True)["model"])).startswith("module.")
    load_student(student_ckpt)
    load_student(real_student_ckpt)


def test_tiny_config_loads():
    cfg = load_config("tiny")
    assert cfg.adm.image_size == 64 and cfg.device == "cpu"
