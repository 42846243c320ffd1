"""`streamdet serve`: the real server process on a free loopback port, talked to over HTTP with httpx.

Every result is checked against `streamdet scan --json` of the same file with the same config (an independent
run of the command line); waits are on conditions with deadlines (a job's status, `/readyz`), never on time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.config import CONFIG_DIR, load_config
from streamdet.errors import ConfigError

from .media import make_video, write_image
from .serve_process import ROOT, ServeProcess, wait_finished

httpx = pytest.importorskip("httpx", reason="the service tests talk HTTP with httpx (pip install 'streamdet[test]')")
pytest.importorskip("fastapi", reason="streamdet serve needs its extra (pip install 'streamdet[serve]')")

runner = CliRunner()
TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-0123456789abcdef"
SECRET = "callback-secret-for-tests"
LIMITS = {"max_upload_bytes": 300_000, "max_duration": 20.0, "max_frames": 64}


def noise(index: int, width: int, height: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def serve_config(folder: Path, **serve: object) -> Path:
    """The tiny config with a `serve:` section, as a YAML file (the server and `scan` both read it)."""
    data = yaml.safe_load((CONFIG_DIR / "tiny.yaml").read_text())
    data["serve"] = {"spool": str(folder / "spool"), **LIMITS, **serve}
    data["max_pixels"] = 640 * 480
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def scan_json(config: Path, weights: list[str], files: list[Path], *options: str) -> dict[str, dict]:
    """`streamdet scan --json` of `files`: each input's document by file name, and the settings under `settings`."""
    out = files[0].parent / f"scan-{time.monotonic_ns()}.json"
    result = runner.invoke(app, ["scan", *map(str, files), "--config", str(config), *weights, "--quiet", "--out", str(out), *options])
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(out.read_text())
    return {**{Path(r["path"]).name: r for r in doc["inputs"]}, "settings": doc["settings"]}


def assert_same_input(served: dict, scanned: dict) -> None:
    """The service's document for one input against `scan --json`'s: status, verdict, score and every frame."""
    assert (served["status"], served["verdict"], served["flagged"], served["kind"]) == (scanned["status"], scanned["verdict"], scanned["flagged"], scanned["kind"])
    assert served["score"] == pytest.approx(scanned["score"], rel=1e-4, abs=1e-9)
    assert [(f["index"], f["time"]) for f in served["frames"]] == [(f["index"], f["time"]) for f in scanned["frames"]]
    assert [f["score"] for f in served["frames"]] == pytest.approx([f["score"] for f in scanned["frames"]], rel=1e-4, abs=1e-9)
    assert [f.get("crop") for f in served["frames"]] == [f.get("crop") for f in scanned["frames"]]


def submit(http: httpx.Client, path: Path, name: str | None = None, **options: object) -> httpx.Response:
    with open(path, "rb") as file:
        return http.post("/v1/scans", files={"file": (name or path.name, file)}, data={k: str(v) for k, v in options.items()})


def server_env(folder: Path) -> dict[str, str]:
    """The server's own cache folder, and one intra-op thread: CI's cores are shared, oversubscribed OpenMP crawls."""
    return {"STREAMDET_HOME": str(folder / "home"), "OMP_NUM_THREADS": "1"}


def spool_files(folder: Path) -> list[Path]:
    uploads = folder / "spool" / "uploads"
    return sorted(uploads.iterdir()) if uploads.is_dir() else []


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The media root: clips of two shapes, images, and a link that points out of the root."""
    folder = tmp_path_factory.mktemp("media")
    make_video(folder / "wide.mp4", 12, (96, 54), 6, pattern=noise)
    make_video(folder / "tall.mkv", 8, (48, 80), 8, pattern=lambda i, w, h: noise(100 + i, w, h))
    for i in range(4):
        write_image(folder / f"still{i}.png", noise(200 + i, 64, 48))
    (folder / "outside").symlink_to("/etc/hostname")
    return folder


@pytest.fixture(scope="module")
def weights(tiny_adm_ckpt: Path, fake_student_ckpt: Path, one_torch_thread: None) -> list[str]:
    return ["--adm", str(tiny_adm_ckpt), "--student", str(fake_student_ckpt)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, media: Path, weights: list[str]):
    """One server on loopback without tokens, with the media root and small limits; (process, its folder, config)."""
    folder = tmp_path_factory.mktemp("served")
    config = serve_config(folder, media_root=str(media), jobs_per_token=64, webhooks=["http://127.0.0.1:"])
    with ServeProcess(["--config", str(config), *weights], env={**server_env(folder), "STREAMDET_WEBHOOK_SECRET": SECRET}) as server:
        server.wait_ready()
        yield server, folder, config


def test_an_upload_gets_the_document_scan_json_writes_for_it(served, media: Path, weights: list[str]):
    server, folder, config = served
    expected = scan_json(config, weights, [media / "wide.mp4"], "--crops", "cover", "--uncertain", "0.3:0.9", "--frames", "6")
    seen: list[dict] = []
    with server.client() as http:
        answer = submit(http, media / "wide.mp4", crops="cover", uncertain="0.3:0.9", frames=6)
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert answer.headers["location"] == f"/v1/scans/{job['id']}" and job["status"] in ("queued", "running", "done")
        final = wait_finished(http, job["id"], seen=seen.append)
        report = http.get(f"/v1/scans/{job['id']}/report")
    assert final["status"] == "done", final
    doc = final["result"]
    made_when = ("time_utc", "command")  # when, and the command line only a command has
    assert {k: v for k, v in doc["settings"].items() if k not in made_when} == {k: v for k, v in expected["settings"].items() if k not in made_when}, "the run info scan --json records, for the job's options"
    assert doc["summary"] == {"inputs": 1, "fake": 1, "real": 0, "errors": 0, "uncertain": 0}
    (only,) = doc["inputs"]
    assert only["path"] == "wide.mp4" and only["verdict"] == "FAKE"
    assert_same_input(only, expected["wide.mp4"])
    fractions = [d["progress"]["fraction"] for d in seen if d["progress"].get("fraction") is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, "progress only goes forward"
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert 'data-verdict="FAKE"' in report.text and "<h2>wide.mp4</h2>" in report.text and report.text.count("<figure>") == 4
    assert spool_files(folder) == [], "the upload is removed when its job ends"


def test_a_path_under_the_media_root_and_nothing_outside_it(served, media: Path, weights: list[str]):
    server, _, config = served
    expected = scan_json(config, weights, [media / "tall.mkv"])
    with server.client() as http:
        answer = http.post("/v1/scans", json={"path": "tall.mkv"}, params={"wait": 60})
        final = wait_finished(http, answer.json()["id"])
        assert_same_input(final["result"]["inputs"][0], expected["tall.mkv"])
        assert final["result"]["inputs"][0]["path"] == "tall.mkv", "named by its path under the root, not the server's full path"
        for path, status in [("../serve.yaml", 403), ("/etc/hostname", 403), ("outside", 403), ("sub/../../x.mp4", 403), ("missing.mp4", 422)]:
            refused = http.post("/v1/scans", json={"path": path})
            assert refused.status_code == status, (path, refused.text)
            assert path.split("/")[-1] in refused.json()["error"]


def test_bad_input_gets_a_clear_one_line_error(served, media: Path, tmp_path: Path):
    server, folder, _ = served
    (tmp_path / "notes.txt").write_text("hello, not a video\n")
    (tmp_path / "lies.mp4").write_text("still not a video\n")
    (tmp_path / "big.bin").write_bytes(np.random.default_rng(0).bytes(LIMITS["max_upload_bytes"] + 50_000))
    write_image(tmp_path / "large.png", np.full((700, 800, 3), 90, np.uint8))  # small file, many pixels
    (tmp_path / "bomb.png").write_bytes(png_header_only(60_000, 60_000))
    make_video(tmp_path / "long.mp4", 25, (32, 32), 1, pattern=noise)  # 25 s at one frame per second
    cut = make_video(tmp_path / "moov-at-end.mp4", 30, (64, 48), 10, pattern=noise)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    cases = [
        (submit, "notes.txt", {}, 415, "notes.txt: not a media file (invalid data)"),
        (submit, "lies.mp4", {}, 415, "lies.mp4: not a media file (invalid data)"),
        (submit, "moov-at-end.mp4", {}, 415, "moov-at-end.mp4: truncated or corrupt MP4/MOV file (invalid data)"),
        (submit, "big.bin", {}, 413, "upload larger than 300,000 bytes"),
        (submit, "large.png", {}, 422, "800×700 frames have 560,000 pixels; this server accepts at most 307,200"),
        (submit, "bomb.png", {}, 422, "bomb.png:"),
        (submit, "long.mp4", {}, 422, "video of 25.0 s; this server accepts at most 20 s"),
        (submit, "large.png", {"framez": 3}, 422, "unknown option 'framez', did you mean 'frames'?"),
        (submit, "large.png", {"frames": 3, "every": 2}, 422, "options frames and every: choose one frame sampling option"),
        (submit, "large.png", {"threshold": 2}, 422, "option threshold"),
        (submit, "large.png", {"method": "dire"}, 422, "this server runs 'distildire'"),
        (submit, "large.png", {"callback": "http://example.com/hook"}, 422, "option callback: 'http://example.com/hook' is not a URL this server may call"),
    ]
    with server.client() as http:
        for send, name, options, status, words in cases:
            answer = send(http, tmp_path / name, **options)
            assert answer.status_code == status, (name, options, answer.text)
            assert words in answer.json()["error"] and "\n" not in answer.json()["error"], (name, answer.json())
        wrong = http.post("/v1/scans", content=b"raw bytes", headers={"content-type": "video/mp4"})
        assert wrong.status_code == 415 and "multipart/form-data" in wrong.json()["error"]
        neither = http.post("/v1/scans", files={"frames": (None, "3")})
        assert neither.status_code == 422 and "either a `file` part" in neither.json()["error"]
        too_many = http.post("/v1/scans", json={"path": "wide.mp4", "all_frames": True}, params={"wait": 0})
        assert too_many.status_code == 202, "12 frames are under the 64-frame limit"
        wait_finished(http, too_many.json()["id"])
    assert spool_files(folder) == [], "refused uploads leave nothing in the spool"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width`×`height` pixels (a decompression bomb's header) with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_upload_names_never_reach_the_file_system(served, media: Path, tmp_path: Path):
    server, folder, _ = served
    target = tmp_path / "deep" / "er"
    target.mkdir(parents=True)
    hostile = b'--B\r\nContent-Disposition: form-data; name="file"; filename="../../..\\evil\x07.png"\r\n\r\n'
    body = hostile + (media / "still0.png").read_bytes() + b"\r\n--B--\r\n"  # built by hand: clients escape such names
    with server.client() as http:
        answer = http.post("/v1/scans", content=body, headers={"content-type": "multipart/form-data; boundary=B"}, params={"wait": 60})
        final = wait_finished(http, answer.json()["id"])
    assert final["status"] == "done" and final["name"] == "evil.png" and final["result"]["inputs"][0]["path"] == "evil.png"
    assert not list(tmp_path.rglob("evil*")) and not list(folder.rglob("evil*")) and not list(Path(ROOT).glob("evil*"))


def test_a_truncated_video_that_opens_ends_its_job_not_the_server(served, media: Path, tmp_path: Path):
    server, _, _ = served
    clip = make_video(tmp_path / "cut.mkv", 40, (64, 48), 10, pattern=noise, gop=5)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 5])
    with server.client() as http:
        answer = submit(http, clip, all_frames=True)
        assert answer.status_code == 202, answer.text
        final = wait_finished(http, answer.json()["id"])
        after = http.post("/v1/scans", json={"path": "still1.png"}, params={"wait": 60})
        assert wait_finished(http, after.json()["id"])["status"] == "done", "the server goes on after a damaged input"
    (result,) = final["result"]["inputs"]
    if final["status"] == "done":
        assert "cut short" in result["warning"] and 0 < len(result["frames"]) < 40
    else:
        assert final["error"] and "\n" not in final["error"]


def test_delete_cancels_a_running_job_and_forgets_a_finished_one(served, media: Path):
    server, folder, _ = served
    clip = make_video(folder / "sixty.mp4", 60, (64, 48), 10, pattern=noise)
    with server.client() as http:
        running = submit(http, clip, all_frames=True).json()
        deadline = time.monotonic() + 120
        while http.get(f"/v1/scans/{running['id']}").json()["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = http.delete(f"/v1/scans/{running['id']}")
        assert gone.status_code == 200 and gone.json()["was"] in ("running", "done")
        assert http.get(f"/v1/scans/{running['id']}").status_code == 404
        finished = http.post("/v1/scans", json={"path": "still2.png"}, params={"wait": 60}).json()
        finished = wait_finished(http, finished["id"])
        assert http.delete(f"/v1/scans/{finished['id']}").json()["was"] == "done"
        assert http.get(f"/v1/scans/{finished['id']}/report").status_code == 404
        assert http.delete(f"/v1/scans/{finished['id']}").status_code == 404
    assert spool_files(folder) == []


def test_health_readiness_metrics_openapi_and_idempotent_retries(served, media: Path):
    server, _, _ = served
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        first = http.post("/v1/scans", json={"path": "still3.png"}, headers={"Idempotency-Key": "retry-1"})
        again = http.post("/v1/scans", json={"path": "still3.png"}, headers={"Idempotency-Key": "retry-1"})
        assert first.json()["id"] == again.json()["id"], "a retried submission is the same job"
        wait_finished(http, first.json()["id"])
        ids = [j["id"] for j in http.get("/v1/scans").json()["jobs"]]
        assert ids.count(first.json()["id"]) == 1
        metrics = http.get("/metrics").text
        schema = http.get("/openapi.json").json()
    for name in ("streamdet_serve_queue_depth", 'streamdet_serve_jobs{status="done"}', "streamdet_serve_frames_per_second",
                 "streamdet_serve_job_latency_seconds_bucket", "streamdet_serve_batch_fill_bucket", "streamdet_serve_model_calls_total"):
        assert name in metrics
    assert {"/v1/scans", "/v1/scans/{job_id}", "/v1/scans/{job_id}/report", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/scans"]["post"]["requestBody"]["content"]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A callback receiver that answers 503 to the first POST and 200 to the others, recording each."""

    posts: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((dict(self.headers), body))
        self.send_response(503 if len(type(self).posts) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_callback_is_signed_and_retried_until_delivered(served, media: Path):
    server, _, _ = served
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with server.client() as client:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hook?from=streamdet"
            answer = client.post("/v1/scans", json={"path": "still1.png", "callback": url}, params={"wait": 60})
            final = wait_finished(client, answer.json()["id"])
        deadline = time.monotonic() + 60
        while len(Receiver.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.shutdown()
    assert len(Receiver.posts) == 2, "one 503, then one retry that was accepted"
    for headers, body in Receiver.posts:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Streamdet-Signature"], expected)
    event = json.loads(Receiver.posts[-1][1])
    (only,) = final["result"]["inputs"]
    assert event["event"] == "scan.finished" and event["id"] == final["id"] and event["status"] == "done"
    assert (event["verdict"], event["score"]) == (only["verdict"], only["score"])
    assert event["links"]["self"] == f"/v1/scans/{final['id']}"


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


@pytest.mark.slow
def test_thirty_concurrent_clients_share_model_calls(served, media: Path, weights: list[str], tmp_path: Path):
    server, folder, config = served
    files = [write_image(tmp_path / f"c{i:02d}.png", noise(300 + i, 64, 48)) for i in range(24)]
    files += [make_video(tmp_path / f"c{i:02d}.mp4", 6, (64, 48), 6, pattern=lambda j, w, h, i=i: noise(400 + 10 * i + j, w, h)) for i in range(24, 30)]
    expected = scan_json(config, weights, files)
    with server.client() as http:
        before = http.get("/metrics").text

    def client(path: Path) -> dict:
        with server.client() as http:
            answer = submit(http, path)
            assert answer.status_code == 202, answer.text
            return wait_finished(http, answer.json()["id"])

    with ThreadPoolExecutor(30) as pool:
        finals = list(pool.map(client, files))
    with server.client() as http:
        after = http.get("/metrics").text
    for path, final in zip(files, finals):
        assert final["status"] == "done" and final["name"] == path.name
        assert_same_input(final["result"]["inputs"][0], expected[path.name])
    frames = metric(after, "streamdet_serve_frames_scored_total") - metric(before, "streamdet_serve_frames_scored_total")
    calls = metric(after, "streamdet_serve_model_calls_total") - metric(before, "streamdet_serve_model_calls_total")
    assert frames == 24 + 6 * 4, "every frame scored once (the tiny config samples 4 frames a clip)"
    assert calls < frames, "frames of concurrent jobs shared model calls"
    assert spool_files(folder) == []


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, media: Path, weights: list[str]):
    """A server that needs tokens (from a file), with a queue of three jobs and two per token."""
    folder = tmp_path_factory.mktemp("guarded")
    config = serve_config(folder, media_root=str(media), queue_size=3, jobs_per_token=2, max_frames=200)
    tokens = folder / "tokens"
    tokens.write_text(f"# API tokens\n{TOKEN_A}\n{TOKEN_B}  # the second client\n")
    with ServeProcess(["--config", str(config), "--tokens", str(tokens), *weights], env=server_env(folder)) as server:
        server.wait_ready()
        yield server, folder


@pytest.mark.slow
def test_tokens_own_their_jobs_and_the_queues_are_bounded(guarded, media: Path):
    server, folder = guarded
    long = make_video(folder / "long.mp4", 120, (32, 32), 10, pattern=noise)  # 120 frames: still running while the next requests come
    with server.client() as anonymous, server.client("x" * 24) as wrong, server.client(TOKEN_A) as a, server.client(TOKEN_B) as b:
        assert anonymous.get("/healthz").status_code == 200, "health needs no token"
        for http in (anonymous, wrong):
            refused = http.post("/v1/scans", json={"path": "still0.png"})
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert http.get("/metrics").status_code == 401 and http.get("/v1/scans").status_code == 401
        assert a.get("/metrics").status_code == 200
        answers = [submit(a, long, all_frames=True) for _ in range(3)]
        assert [r.status_code for r in answers[:2]] == [202, 202]
        assert answers[2].status_code == 429 and "this token has 2 jobs queued or running" in answers[2].json()["error"], answers[2].text
        assert int(answers[2].headers["retry-after"]) >= 1
        mine = [r.json()["id"] for r in answers[:2]]
        assert b.get(f"/v1/scans/{mine[0]}").status_code == 404 and b.delete(f"/v1/scans/{mine[0]}").status_code == 404, "another token's job is invisible"
        assert [j["id"] for j in a.get("/v1/scans").json()["jobs"]] == mine and b.get("/v1/scans").json()["jobs"] == []
        third = submit(b, long, all_frames=True)
        full = submit(b, long, all_frames=True)
        assert third.status_code == 202 and full.status_code == 429 and "the queue is full (3 jobs)" in full.json()["error"], full.text
        for owner, job_id in [(a, mine[0]), (a, mine[1]), (b, third.json()["id"])]:
            assert owner.delete(f"/v1/scans/{job_id}").status_code == 200
        after = b.post("/v1/scans", json={"path": "still0.png"}, params={"wait": 60})
        assert wait_finished(b, after.json()["id"])["status"] == "done", "deleting jobs frees their places"
    assert spool_files(folder) == []


@pytest.mark.slow
def test_listening_beyond_loopback_needs_tokens(tmp_path: Path):
    def serve(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "streamdet", "serve", "--config", "tiny", *args], capture_output=True, text=True,
                              env={"PYTHONPATH": str(ROOT), "STREAMDET_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **env}, timeout=120)

    bare = serve("--host", "0.0.0.0")
    assert bare.returncode == 2 and bare.stderr.count("\n") == 1
    assert "--host 0.0.0.0: listening beyond loopback needs API tokens (--tokens FILE or the STREAMDET_TOKENS environment variable)" in bare.stderr
    short = serve("--host", "0.0.0.0", STREAMDET_TOKENS="abc")
    assert short.returncode == 2 and "STREAMDET_TOKENS: a token of 3 characters; tokens need at least 16" in short.stderr
    (tmp_path / "empty").write_text("# nothing\n")
    empty = serve("--tokens", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no tokens in the file" in empty.stderr
    unsigned = subprocess.run([sys.executable, "-m", "streamdet", "serve", "--config", str(serve_config(tmp_path, webhooks=["https://hooks.example/"]))],
                              capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "STREAMDET_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert unsigned.returncode == 2 and "set the STREAMDET_WEBHOOK_SECRET environment variable" in unsigned.stderr


def test_the_serve_section_is_validated_like_every_other():
    assert load_config("tiny", {"serve.queue_size": 5}).serve.queue_size == 5
    with pytest.raises(ConfigError, match=r"unknown setting 'serve.queue_sise', did you mean 'serve.queue_size'\?"):
        load_config("tiny", {"serve.queue_sise": 5})
    with pytest.raises(ConfigError, match=r"serve.port: must be less than or equal to 65535"):
        load_config("tiny", {"serve.port": 70000})


@pytest.mark.slow
def test_kill_9_with_jobs_queued_and_running_loses_and_duplicates_none(tmp_path: Path, media: Path, weights: list[str]):
    config = serve_config(tmp_path, media_root=str(media), decode_jobs=1)
    env = server_env(tmp_path)
    clips = [make_video(tmp_path / f"k{i}.mp4", 10, (64, 48), 10, pattern=lambda j, w, h, i=i: noise(500 + 40 * i + j, w, h)) for i in range(6)]
    expected = scan_json(config, weights, clips)
    first = ServeProcess(["--config", str(config), *weights], env=env)
    try:
        first.wait_ready()
        with first.client() as http:
            accepted = {submit(http, clip).json()["id"]: clip.name for clip in clips}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                statuses = [j["status"] for j in http.get("/v1/scans").json()["jobs"]]
                if "running" in statuses and "queued" in statuses:
                    break
                time.sleep(0.02)
            assert "running" in statuses and "queued" in statuses, statuses
    finally:
        first.kill()
    assert first.process.returncode == -9
    with ServeProcess(["--config", str(config), *weights], env=env) as second:
        recovered = [int(found.group(1)) for line in second.lines if (found := re.search(r"\((\d+) interrupted jobs queued again", line))]
        assert recovered and recovered[0] >= 1, second.stderr()
        with second.client() as http:
            finals = {job_id: wait_finished(http, job_id) for job_id in accepted}
            listed = [j["id"] for j in http.get("/v1/scans").json()["jobs"]]
    assert sorted(listed) == sorted(accepted), "every accepted job, each once"
    for job_id, final in finals.items():
        assert final["status"] == "done", final
        assert_same_input(final["result"]["inputs"][0], expected[accepted[job_id]])
    assert any(final["attempts"] == 2 for final in finals.values()), "the job that was running ran again"
    assert spool_files(tmp_path) == []


@pytest.mark.browser
def test_the_page_uploads_a_file_and_shows_its_report_in_chromium(served, media: Path, tmp_path: Path):
    from .test_report_html import chromium_driver, console_errors_and_screenshot

    server, _, _ = served
    browser = chromium_driver()
    try:
        browser.get(server.url + "/")
        browser.find_element("id", "file").send_keys(str(media / "wide.mp4"))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not browser.execute_script("return !document.getElementById('report').hidden"):
            time.sleep(0.1)
        verdict = browser.find_element("id", "verdict").text
        state = browser.find_element("id", "state").text
        browser.switch_to.frame(browser.find_element("id", "report"))
        sections = browser.execute_script("return [...document.querySelectorAll('section.input')].map(s => [s.querySelector('h2').textContent, s.dataset.verdict])")
        thumbs = browser.execute_script("return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        browser.switch_to.default_content()
        shot = tmp_path / "page.png"
        errors = console_errors_and_screenshot(browser, shot)
    finally:
        browser.quit()
    assert state == "wide.mp4: done" and verdict.startswith("FAKE (score ")
    assert sections == [["wide.mp4", "FAKE"]] and thumbs == 4
    assert errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
