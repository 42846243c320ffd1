"""`streamdet serve --ray local`: the service as a Ray Serve application on a local Ray, talked to over HTTP with httpx.

The real command starts a local Ray instance in its own process, deploys the Front and Scoring deployments and
announces the proxy's address; results are checked against `streamdet scan --json` of the same files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from .media import make_video
from .serve_process import ROOT, ServeProcess, wait_finished
from .test_serve import assert_same_input, scan_json, serve_config, server_env, submit

httpx = pytest.importorskip("httpx", reason="the service tests talk HTTP with httpx (pip install 'streamdet[test]')")
pytest.importorskip("fastapi", reason="streamdet serve needs its extra (pip install 'streamdet[serve]')")
pytest.importorskip("ray.serve", reason="streamdet serve --ray needs Ray Serve (pip install 'streamdet[serve-ray]')")


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(500 + index).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("ray-media")
    make_video(folder / "wide.mp4", 12, (96, 54), 6, pattern=noise)
    make_video(folder / "tall.mkv", 8, (48, 80), 8, pattern=lambda i, w, h: noise(100 + i, w, h))
    return [folder / "wide.mp4", folder / "tall.mkv"]


@pytest.fixture(scope="module")
def weights(tiny_adm_ckpt: Path, student_ckpt: Path, one_torch_thread: None) -> list[str]:
    """The tiny ADM and a random student whose scores differ from frame to frame."""
    return ["--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt)]


@pytest.fixture(scope="module")
def on_ray(tmp_path_factory: pytest.TempPathFactory, weights: list[str]):
    """`streamdet serve --ray local` with the tiny config (a local Ray of two CPUs); (process, config)."""
    folder = tmp_path_factory.mktemp("served-ray")
    config = serve_config(folder, jobs_per_token=64)
    data = yaml.safe_load(config.read_text())
    data["cluster"] = {"num_cpus": 2}
    config.write_text(yaml.safe_dump(data))
    with ServeProcess(["--ray", "local", "--config", str(config), *weights], env=server_env(folder), start_s=600.0) as server:
        server.wait_ready(600.0)
        yield server, config


@pytest.mark.slow
@pytest.mark.ray
def test_an_upload_through_ray_serve_gets_the_scores_and_verdict_of_scan(on_ray, clips: list[Path], weights: list[str]):
    server, config = on_ray
    clip = clips[0]
    with server.client() as http:
        answer = submit(http, clip)
        assert answer.status_code == 202, answer.text
        doc = wait_finished(http, answer.json()["id"], 600.0)
    assert doc["status"] == "done", doc
    served = doc["result"]["inputs"][0]
    scanned = scan_json(config, weights, [clip])[clip.name]
    assert len(served["frames"]) > 1
    assert [f["score"] for f in served["frames"]] == pytest.approx([f["score"] for f in scanned["frames"]], abs=1e-6)
    assert_same_input(served, scanned)
    assert doc["result"]["settings"]["device"] == "cpu"


@pytest.mark.slow
@pytest.mark.ray
def test_two_concurrent_uploads_through_ray_serve_both_finish(on_ray, clips: list[Path], weights: list[str]):
    server, config = on_ray

    def one(clip: Path) -> dict:
        with server.client() as http:
            answer = submit(http, clip)
            assert answer.status_code == 202, answer.text
            return wait_finished(http, answer.json()["id"], 600.0)

    with ThreadPoolExecutor(2) as pool:
        docs = list(pool.map(one, clips))
    scanned = scan_json(config, weights, clips)
    for clip, doc in zip(clips, docs):
        assert doc["status"] == "done", doc
        assert_same_input(doc["result"]["inputs"][0], scanned[clip.name])


def test_serve_ray_at_an_address_nothing_answers_is_one_line_and_exit_2(tmp_path: Path, tiny_adm_ckpt: Path, student_ckpt: Path):
    with socket_unused() as port:
        done = subprocess.run(
            [sys.executable, "-m", "streamdet", "serve", "--ray", f"127.0.0.1:{port}", "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt)],
            capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **server_env(tmp_path), "PYTHONPATH": str(ROOT)},
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"streamdet: error: --ray 127.0.0.1:{port}: no Ray head answers there (Connection refused)"]


BLOCK_RAY_SERVE = """
import sys
class NoServe:
    def find_spec(self, name, path=None, target=None):
        if name == "ray.serve" or name.startswith("ray.serve."):
            raise ImportError("No module named 'ray.serve' (blocked by the test)")
sys.meta_path.insert(0, NoServe())
from streamdet.cli import app
app(sys.argv[1:], prog_name="streamdet")
"""


def test_without_ray_serve_serve_ray_says_what_to_install(tmp_path: Path, tiny_adm_ckpt: Path, student_ckpt: Path):
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_RAY_SERVE, "serve", "--ray", "local", "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(student_ckpt)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **server_env(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "streamdet: error: streamdet serve --ray needs Ray Serve: pip install 'streamdet[serve-ray]' (or pip install 'ray[serve]>=2.10,<2.64')"
    ]
    assert not (tmp_path / "home" / "serve").exists(), "nothing opened before the refusal"


class socket_unused:
    """A loopback port that nothing listens on while the block runs (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
