"""Checkpoint registry, cache, downloads and the one-line errors for files that are not checkpoints."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import streamdet.weights as streamdet_weights
from streamdet.cli import app
from streamdet.config import load_config
from streamdet.errors import WeightsError
from streamdet.models.adm import load_adm
from streamdet.models.student import load_student
from streamdet.files import write_bytes
from streamdet.weights import REGISTRY, WeightFile, cached_path, file_sha256, resolve, verify

from .checkpoints import save_adm
from .media import write_image

BODY = bytes(range(256)) * 1200
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves BODY at every path; for /cut it promises twice the bytes it sends."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY) * (2 if self.path.endswith("/cut") else 1)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def registered(tmp_path, monkeypatch, http_url):
    """Register a checkpoint served by the local server, with the cache in tmp_path; returns a factory."""
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STREAMDET_OFFLINE", raising=False)
    monkeypatch.setenv("STREAMDET_DOWNLOAD_RETRIES", "1")  # one retry, made at once (later ones wait 2 s, 4 s, …)

    def register(path: str = "/w.pth", sha256: str | None = BODY_SHA256, size: int | None = None) -> WeightFile:
        weight = WeightFile("test-student", "student", f"{http_url}{path}", 1, "served by the test", sha256=sha256, bytes=size)
        monkeypatch.setitem(REGISTRY, weight.name, weight)
        return weight

    return register


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which file a descriptor is")
def test_durable_atomic_write_flushes_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    target = tmp_path / "sub" / "out.bin"
    write_bytes(target, b"data", fsync=True)
    assert target.read_bytes() == b"data" and _files(target.parent) == ["out.bin"]
    assert len(synced) == 2 and Path(synced[0]).parent == target.parent and synced[0] != str(target)
    assert synced[1] == str(target.parent), "the folder is flushed after the rename"
    synced.clear()
    write_bytes(target, b"again")
    assert synced == [] and target.read_bytes() == b"again"


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    from streamdet.files import atomic_path

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, fsync=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and _files(tmp_path) == ["out.bin"]


def test_download_with_the_right_checksum_is_cached_and_reported(registered):
    weight = registered()
    seen = []
    path = resolve(weight.name, progress=lambda done, total: seen.append((done, total)))
    assert path == cached_path(weight) and path.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY)) and len(seen) > 2
    assert _files(path.parent) == [path.name], "no temporary file is left"
    assert json.loads(streamdet_weights.hash_record(path).read_text())["sha256"] == BODY_SHA256


def test_download_with_the_wrong_checksum_leaves_no_file(registered):
    weight = registered(sha256="0" * 64)
    with pytest.raises(WeightsError) as info:
        resolve(weight.name)
    message = str(info.value)
    assert "does not match the published sha256" in message and "expected 000000000000" in message and "\n" not in message
    assert _files(cached_path(weight).parent) == []


def test_download_of_the_wrong_size_leaves_no_file(registered):
    weight = registered(sha256=None, size=len(BODY) + 1)
    with pytest.raises(WeightsError, match=f"download has {len(BODY)} bytes, the published file has {len(BODY) + 1}"):
        resolve(weight.name)
    assert _files(cached_path(weight).parent) == []


def test_cut_download_leaves_no_file_that_looks_finished(registered):
    weight = registered("/cut", sha256=None)
    with pytest.raises(WeightsError, match="download cut short"):
        resolve(weight.name)
    assert _files(cached_path(weight).parent) == []


def test_cached_file_that_does_not_match_says_what_to_do(registered, monkeypatch):
    weight = registered()
    path = cached_path(weight)
    path.parent.mkdir(parents=True)
    path.write_bytes(BODY[:-1] + b"!")
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        resolve(weight.name)
    message = str(info.value)
    assert message.startswith(f"{path}: does not match the published test-student checkpoint")
    assert message.endswith("delete it and run `streamdet weights download test-student`, or pass your own file with --student")
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", BODY[: len(BODY) // 2]], ids=["empty", "truncated"])
def test_empty_or_truncated_cached_file_is_refused(registered, monkeypatch, content):
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    for weight in (registered(), registered(sha256=None, size=len(BODY))):
        path = cached_path(weight)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        with pytest.raises(WeightsError, match="empty file|does not match|has \\d+ bytes"):
            resolve(weight.name)


def test_truncated_cached_file_without_published_checksum_is_refused(registered, monkeypatch, tiny_adm_ckpt):
    weight = registered(sha256=None)
    path = cached_path(weight)
    path.parent.mkdir(parents=True)
    data = tiny_adm_ckpt.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    with pytest.raises(WeightsError, match="truncated or corrupt.*delete it and run"):
        resolve(weight.name)
    path.write_bytes(data)
    assert resolve(weight.name) == path and verify(weight, path) == "no published checksum"


def test_verified_cached_file_is_used_offline_and_hashed_once(registered, monkeypatch):
    weight = registered()
    path = cached_path(weight)
    path.parent.mkdir(parents=True)
    path.write_bytes(BODY)
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    assert resolve(weight.name) == path
    read = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if Path(file) == path:
            read.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    streamdet_weights._hashes.clear()  # a new process: only the record beside the file remains
    assert resolve(weight.name) == path and file_sha256(path) == BODY_SHA256
    assert read == [], "the verified state is remembered beside the file"


def test_file_sha256_rehashes_a_changed_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path / "home"))
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    assert file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two, longer")
    assert file_sha256(path) == hashlib.sha256(b"two, longer").hexdigest()
    record = streamdet_weights.hash_record(path)
    assert _files(tmp_path) == ["f.bin", "home"], "nothing is written beside the file"
    os.utime(path, ns=(1, 1))
    record.write_text(json.dumps({"size": path.stat().st_size, "mtime_ns": 2, "inode": path.stat().st_ino, "sha256": "stale"}))
    streamdet_weights._hashes.clear()
    assert file_sha256(path) == hashlib.sha256(b"two, longer").hexdigest()


def test_offline_error_names_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    weight = REGISTRY["adm-256-uncond"]
    with pytest.raises(WeightsError) as info:
        resolve("adm-256-uncond")
    message = str(info.value)
    assert weight.filename in message and weight.url in message and str(cached_path(weight)) in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == [], "offline: nothing is downloaded or created"


def test_a_fresh_machine_offline_hears_of_every_missing_checkpoint_at_once(tmp_path, monkeypatch):
    """`scan` with the default config on an empty cache and no network: one line naming the ADM and the student,
    their sizes and the one command that fetches both, before any model is built."""
    monkeypatch.setenv("STREAMDET_HOME", str(tmp_path))
    monkeypatch.setenv("STREAMDET_OFFLINE", "1")
    clip = write_image(tmp_path / "clip.png", np.zeros((32, 48, 3), np.uint8))  # an input to scan: the scan gets as far as the models
    result = CliRunner().invoke(app, ["scan", str(clip), "-q"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    adm, student = REGISTRY["adm-256-uncond"], REGISTRY["distildire-imagenet"]
    assert line.startswith("streamdet: error: 2 checkpoints are not cached")
    assert f"{adm.name} ({adm.size_mb} MB)" in line and f"{student.name} ({student.size_mb} MB)" in line
    assert f"streamdet weights download {adm.name} {student.name}" in line


def test_registry_records_sha256_where_one_was_found():
    for weight in REGISTRY.values():
        assert weight.sha256 is None or (len(weight.sha256) == 64 and int(weight.sha256, 16) >= 0)
    assert REGISTRY["adm-256-uncond"].sha256 is not None


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
        "code": (code, "refused: it holds Python objects (torch.nn.modules.linear.Linear), not only tensors"),
    }


@pytest.mark.parametrize("case", ["text", "noise", "truncated", "empty", "code"])
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, tiny_config, tiny_adm_ckpt, case):
    path, problem = _bad_files(tmp_path, tiny_adm_ckpt)[case]
    for loader in (lambda p: load_adm(tiny_config.adm, p), load_student):
        with pytest.raises(WeightsError) as info:
            loader(path)
        message = str(info.value)
        assert message.startswith(str(path)) and problem in message and "\n" not in message
        assert "weights_only" not in message, "never advise loading a checkpoint as code"


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


def test_weights_list_verifies_what_it_calls_cached(registered):
    weight = registered()
    path = cached_path(weight)
    path.parent.mkdir(parents=True)
    runner = CliRunner()
    assert "test-student" in runner.invoke(app, ["weights", "list"]).output
    path.write_bytes(BODY)
    assert "yes (verified)" in runner.invoke(app, ["weights", "list"]).output
    path.write_bytes(BODY[:-1] + b"!")
    listed = runner.invoke(app, ["weights", "list"], terminal_width=400).output
    assert "unusable" in listed and "yes (verified)" not in listed
