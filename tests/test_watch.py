"""`streamdet watch` end to end against a real RTSP server (GStreamer's), real files and real sockets.

The RTSP tests need GStreamer's RTSP server (see tests/rtsp.py for the Debian packages); without it they
are skipped with the reason, unless STREAMDET_REQUIRE_RTSP=1 (set by CI), where they fail instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamdet.export.metadata import BatchRange
from streamdet.export.exporter import export_models

from .media import make_video
from .rtsp import RtspServer, free_port, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.live]

_WHY_NO_RTSP = unavailable()


@pytest.fixture(scope="module")
def rtsp_required() -> None:
    if _WHY_NO_RTSP is None:
        return
    if os.environ.get("STREAMDET_REQUIRE_RTSP") == "1":
        pytest.fail(f"STREAMDET_REQUIRE_RTSP=1 but the RTSP test server cannot run: {_WHY_NO_RTSP}")
    pytest.skip(_WHY_NO_RTSP)


@pytest.fixture(scope="module")
def server(rtsp_required) -> RtspServer:
    """One server shared by the tests that do not kill it; two mount points for two-stream runs."""
    srv = RtspServer(paths=("/test", "/cam2")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 5-second, 10-fps clip for --realtime."""
    return make_video(tmp_path_factory.mktemp("live") / "clip.mp4", 50, (96, 64), 10)


def _env() -> dict[str, str]:
    """The child's environment: loopback never through a proxy; one torch thread, as two busy shared cores
    make OpenMP's multi-thread barriers several times slower than a single thread."""
    env = dict(os.environ)
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _watch(urls: list[str], adm: Path, student: Path, events: Path, *extra: str) -> subprocess.Popen:
    """Start `streamdet watch` in a child process, events appended to `events`."""
    args = [sys.executable, "-m", "streamdet", "watch", *urls, "--config", "tiny", "--adm", str(adm), "--student", str(student)]
    args += ["--events", str(events), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[int, str]:
    _, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stderr


def _terminate(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM (as an operator's service manager would) and wait for the clean exit."""
    proc.send_signal(signal.SIGTERM)
    return _finish(proc, timeout=30)


def _events(path: Path, kind: str | None = None, stream: str | None = None) -> list[dict]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in found if (kind is None or e["event"] == kind) and (stream is None or e.get("stream") == stream)]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def webhook_receiver():
    _Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", _Receiver.received
    httpd.shutdown()
    httpd.server_close()


def test_fake_student_raises_alert_with_frames_in_time_order(server, tiny_adm_ckpt, fake_student_ckpt, tmp_path, webhook_receiver):
    hook_url, posted = webhook_receiver
    events = tmp_path / "events.jsonl"
    port = free_port()
    url = server.url()
    proc = _watch(
        [url], tiny_adm_ckpt, fake_student_ckpt, events,
        "--duration", "120", "--fps", "4", "--window", "6", "--min-frames", "3", "--log-frames",
        "--status-every", "2", "--metrics-port", str(port), "--webhook", hook_url,
    )
    try:
        _wait_for(lambda: _events(events, "frame"), 60, "the first scored frame")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            metrics = {f.name: f.samples for f in text_string_to_metric_families(response.read().decode())}
        _wait_for(lambda: _events(events, "alert_raised") and len(_events(events, "frame")) >= 8 and _events(events, "status"), 60, "an alert and 8 frames")
        _wait_for(lambda: posted, 10, "the webhook POST")
    finally:
        code, stderr = _terminate(proc)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert [s.value for s in metrics["streamdet_stream_up"] if s.labels == {"stream": url}] == [1]
    assert [s.value for s in metrics["streamdet_latency_seconds"] if s.name.endswith("_count") and s.labels == {"stream": url}][0] >= 1
    frames = _events(events, "frame", url)
    assert len(frames) >= 8
    times = [f["time"] for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times), times
    indexes = [f["index"] for f in frames]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
    assert all(f["score"] > 0.99 and f["latency_ms"] >= 0 and f["arrival"].endswith("Z") for f in frames)
    raised = _events(events, "alert_raised", url)
    assert len(raised) == 1, "a steady fake stream raises one alert, and it does not flap"
    assert raised[0]["score"] > 0.99 and raised[0]["frames"] >= 3 and raised[0]["window_end"] >= raised[0]["window_start"]
    assert not _events(events, "alert_cleared")
    assert [p["event"] for p in posted] == ["alert_raised"] and posted[0]["stream"] == url
    statuses = _events(events, "status", url)
    assert statuses and all(s["pending"] <= 1 for s in statuses)
    assert "fps analysed" in stderr and "latency p50" in stderr
    (summary,) = _events(events, "summary", url)
    assert summary["alert"] is True and summary["alerts"] == 1 and summary["analysed"] == len(frames)
    assert _events(events)[-1]["event"] == "watch_stop"


def test_real_student_two_streams_in_one_process_raise_nothing(server, clip, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    events = tmp_path / "events.jsonl"
    url = server.url("/cam2")
    proc = _watch([url, str(clip)], tiny_adm_ckpt, real_student_ckpt, events, "--realtime", "--duration", "120", "--fps", "4", "--window", "4", "--min-frames", "2", "--log-frames", "-q")
    try:
        _wait_for(lambda: _events(events, "stream_end") and len(_events(events, "frame", url)) >= 6, 60, "the file's end and 6 frames of the RTSP stream")
    finally:
        code, stderr = _terminate(proc)
    assert code == 0, stderr
    assert not _events(events, "alert_raised")
    frames = _events(events, "frame")
    assert all(f["score"] < 0.01 for f in frames)
    assert {url, str(clip)} <= {f["stream"] for f in frames}
    assert _events(events, "stream_end", str(clip))
    for summary in _events(events, "summary"):
        assert summary["analysed"] > 0 and summary["alerts"] == 0 and summary["max_window_score"] < 0.01


def test_realtime_file_plays_at_its_own_speed_and_ends(clip, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    events = tmp_path / "events.jsonl"
    code, stderr = _finish(_watch([str(clip)], tiny_adm_ckpt, real_student_ckpt, events, "--realtime", "--log-frames", "-q"))
    assert code == 0, stderr
    (up,) = _events(events, "stream_up")
    (end,) = _events(events, "stream_end")
    assert end["frames"] == 50
    played = _seconds(end["ts"]) - _seconds(up["ts"])
    assert played >= 4.0, f"a 5 s clip played in {played:.2f} s"  # no upper bound: a busy machine may lag behind
    frames = _events(events, "frame")
    assert [f["time"] for f in frames] == [f["pts"] for f in frames]
    assert frames[0]["time"] == 0.0 and all(b["time"] > a["time"] for a, b in zip(frames, frames[1:]))
    arrivals = [_seconds(f["arrival"]) for f in frames]
    for frame, arrival in zip(frames, arrivals):  # never ahead of its timestamp (0.5 s: the first frame's own wake-up delay)
        assert arrival - arrivals[0] >= frame["time"] - frames[0]["time"] - 0.5, (frame, arrival - arrivals[0])
    last = _events(events)[-1]
    assert last["event"] == "watch_stop" and last["reason"] == "all streams ended"


def test_realtime_file_with_the_onnxruntime_backend(tiny_config, tiny_adm_ckpt, student_ckpt, tmp_path):
    """watch takes scan's runtime options: the exported tiny models score a 2-second --realtime file through ONNX Runtime."""
    engines = tmp_path / "engines"
    export_models(tiny_config, "onnx", "fp32", BatchRange.around(tiny_config.batch), engines, adm=tiny_adm_ckpt, student=student_ckpt)
    video = make_video(tmp_path / "short.mp4", 20, (96, 64), 10)
    events = tmp_path / "events.jsonl"
    code, stderr = _finish(_watch([str(video)], tiny_adm_ckpt, student_ckpt, events, "--realtime", "--log-frames", "-q", "--backend", "onnxruntime", "--engines", str(engines)))
    assert code == 0, stderr
    (start,) = _events(events, "watch_start")
    assert start["settings"]["backend"] == "onnxruntime" and start["settings"]["student_precision"] == "fp32"
    frames = _events(events, "frame")
    assert len(frames) >= 3 and all(0.0 <= f["score"] <= 1.0 for f in frames)
    (summary,) = _events(events, "summary")
    assert summary["analysed"] == len(frames)


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_server_killed_and_restarted_stream_goes_down_and_comes_back(rtsp_required, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    srv = RtspServer().start()
    events = tmp_path / "events.jsonl"
    url = srv.url()
    proc = _watch([url], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "120", "--timeout", "3", "--max-backoff", "2", "--log-frames", "-q")
    try:
        _wait_for(lambda: len(_events(events, "frame")) >= 3, 60, "frames before the kill")
        srv.kill()
        _wait_for(lambda: _events(events, "stream_reconnecting"), 15, "the reconnection attempt")
        time.sleep(2)
        srv.start()
        _wait_for(lambda: len(_events(events, "stream_up")) == 2 and _frames_after_last_up(events) >= 3, 60, "frames after the reconnect")
    finally:
        code, stderr = _terminate(proc)
        srv.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    kinds = [e["event"] for e in _events(events) if e["event"].startswith("stream_")]
    first_down = kinds.index("stream_down")
    assert kinds[0] == "stream_up" and kinds[first_down + 1] == "stream_reconnecting"
    assert "stream_up" in kinds[first_down + 1 :], kinds
    back = len(kinds) - 1 - kinds[::-1].index("stream_up")
    assert set(kinds[first_down + 1 : back]) <= {"stream_reconnecting", "stream_error"}
    assert _frames_after_last_up(events) >= 3, "frames are scored again after the reconnect"
    times = [e["time"] for e in _events(events, "frame")]
    assert times == sorted(times), "stream time keeps increasing across the reconnect"
    reconnecting = _events(events, "stream_reconnecting")
    assert [r["attempt"] for r in reconnecting][:2] == [1, 2] and all(r["delay_s"] <= 2 for r in reconnecting)
    (summary,) = _events(events, "summary")
    assert summary["reconnects"] == len(reconnecting)


def _frames_after_last_up(events: Path) -> int:
    everything = _events(events)
    ups = [i for i, e in enumerate(everything) if e["event"] == "stream_up"]
    return sum(e["event"] == "frame" for e in everything[ups[-1] :]) if ups else 0


def test_stalled_server_is_detected_by_the_read_timeout(rtsp_required, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    srv = RtspServer().start()
    events = tmp_path / "events.jsonl"
    proc = _watch([srv.url()], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "120", "--timeout", "2", "--max-backoff", "1", "--log-frames", "-q")
    try:
        _wait_for(lambda: _events(events, "frame"), 60, "the first frame")
        srv.pause()
        _wait_for(lambda: _events(events, "stream_down"), 10, "the stall to be noticed")
        srv.resume()
        _wait_for(lambda: len(_events(events, "stream_up")) >= 2 and _frames_after_last_up(events) >= 1, 60, "frames after the stall")
    finally:
        code, stderr = _terminate(proc)
        srv.stop()
    assert code == 0, stderr
    down = _events(events, "stream_down")[0]
    assert down["reason"] == f"{srv.url()}: no data for 2 s (stalled)"


def test_server_that_answers_but_sends_no_video_is_an_error_never_up(rtsp_required, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    """The RTSP server describes and sets up the stream but never sends a packet: no stream_up, only errors."""
    srv = RtspServer(silent=True).start()
    events = tmp_path / "events.jsonl"
    port = free_port()
    url = srv.url()
    proc = _watch([url], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "60", "--timeout", "2", "--max-backoff", "1", "--metrics-port", str(port), "-q")
    try:
        _wait_for(lambda: len(_events(events, "stream_error")) >= 2, 40, "two failed connections")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = {f.name: f.samples for f in text_string_to_metric_families(response.read().decode())}
    finally:
        code, stderr = _terminate(proc)
        srv.stop()
    assert code == 0, stderr
    assert not _events(events, "stream_up") and not _events(events, "stream_down")
    errors = _events(events, "stream_error", url)
    assert all(e["error"] == f"{url}: connected but no video within 2 s" for e in errors), errors
    assert [e["attempt"] for e in errors][:2] == [0, 1], "a connection without video counts as a failed attempt"
    assert [s.value for s in metrics["streamdet_stream_up"]] == [0]
    (summary,) = _events(events, "summary")
    assert summary["state"] == "ended" and summary["received"] == 0 and summary["reconnects"] >= 1


def test_unreachable_and_silent_urls_are_retried_without_traceback(tiny_adm_ckpt, real_student_ckpt, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = f"rtsp://127.0.0.1:{free_port()}/x"
    mute = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x"
    events = tmp_path / "events.jsonl"
    try:
        code, stderr = _finish(_watch([closed, mute], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "7", "--timeout", "1.5", "--max-backoff", "2", "-q"))
    finally:
        silent.close()
    assert code == 0, stderr
    assert "Traceback" not in stderr and stderr.strip() == ""
    refused = _events(events, "stream_error", closed)
    assert len(refused) >= 2 and refused[0]["error"] == f"{closed}: connection refused"
    timed_out = _events(events, "stream_error", mute)
    assert timed_out and timed_out[0]["error"] == f"{mute}: no answer within 1.5 s (timed out)"
    delays = [e["delay_s"] for e in _events(events, "stream_reconnecting", closed)]
    assert 0.5 <= delays[0] <= 1.0 and all(1.0 <= d <= 2.0 for d in delays[1:3]), f"jittered backoff doubles up to --max-backoff: {delays}"
    for summary in _events(events, "summary"):
        assert summary["analysed"] == 0 and summary["reconnects"] >= 1


class _HttpStreams(BaseHTTPRequestHandler):
    """A camera-like HTTP server: /mjpeg is a live multipart JPEG stream at 10 fps, other paths are files (HLS)."""

    root: Path

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/mjpeg":
            self._mjpeg()
            return
        target = self.root / self.path.lstrip("/")
        if not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _mjpeg(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(100_000):
                ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), i % 256, np.uint8))
                data = jpeg.tobytes()
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                self.wfile.write(head + data + b"\r\n")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, format: str, *args: object) -> None:
        pass


def _make_hls(folder: Path, frames: int = 100, fps: int = 10) -> None:
    """A VOD HLS playlist with 1-second H.264 segments, written by FFmpeg's HLS muxer."""
    with av.open(str(folder / "live.m3u8"), "w", format="hls", options={"hls_time": "1", "hls_playlist_type": "vod"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.gop_size = fps
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), i * 2 % 256, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_http_mjpeg_and_hls_streams(tiny_adm_ckpt, real_student_ckpt, tmp_path):
    _make_hls(tmp_path)
    handler = type("Handler", (_HttpStreams,), {"root": tmp_path})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    mjpeg, hls = f"{base}/mjpeg", f"{base}/live.m3u8"
    events = tmp_path / "events.jsonl"
    proc = _watch([mjpeg, hls], tiny_adm_ckpt, real_student_ckpt, events, "--realtime", "--duration", "120", "--log-frames", "-q")
    try:
        _wait_for(lambda: len(_events(events, "frame", mjpeg)) >= 8 and len(_events(events, "frame", hls)) >= 4, 60, "frames of both streams")
    finally:
        code, stderr = _terminate(proc)
        httpd.shutdown()
        httpd.server_close()
    assert code == 0, stderr
    codecs = {e["stream"]: e["codec"] for e in _events(events, "stream_up")}
    assert codecs == {mjpeg: "mjpeg", hls: "h264"}
    assert all(f["pts"] is None for f in _events(events, "frame", mjpeg)), "MJPEG over HTTP has no timestamps"
    mjpeg_frames = _events(events, "frame", mjpeg)
    times = [f["time"] - mjpeg_frames[0]["time"] for f in mjpeg_frames]
    arrivals = [_seconds(f["arrival"]) - _seconds(mjpeg_frames[0]["arrival"]) for f in mjpeg_frames]
    assert times == pytest.approx(arrivals, abs=3e-3), "without timestamps, stream time is the arrival clock (to the ms of the stamps)"
    assert len(times) <= 2 * times[-1] + 1, f"at most 2 frames per second of stream time: {times}"
    hls_frames = _events(events, "frame", hls)
    offset = hls_frames[0]["pts"] - hls_frames[0]["time"]
    assert all(abs(f["pts"] - f["time"] - offset) < 1e-3 for f in hls_frames), "HLS frames keep their timestamps"


def _serve(folder: Path) -> ThreadingHTTPServer:
    """Python's own http.server serving `folder` on a free port of 127.0.0.1, in a daemon thread."""
    handler = functools.partial(_QuietFiles, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command-line tool to write the HLS playlist")
def test_hls_vod_playlist_plays_at_its_own_pace_and_ends_like_a_file(tiny_adm_ckpt, real_student_ckpt, tmp_path):
    """A fixed-length playlist (VOD, #EXT-X-ENDLIST) is read once, at the pace of its timestamps, and ends with
    `stream_end`; it is not read at decode speed and replayed on every reconnect."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-t", "3", "-c:v", "libx264", "-g", "10",
         "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", str(tmp_path / "vod.m3u8")],
        check=True,
    )
    assert "#EXT-X-ENDLIST" in (tmp_path / "vod.m3u8").read_text()
    httpd = _serve(tmp_path)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/vod.m3u8"
    events = tmp_path / "events.jsonl"
    try:
        code, stderr = _finish(_watch([url], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "60", "--log-frames", "-q"), timeout=180)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 0, stderr
    kinds = [e["event"] for e in _events(events)]
    assert kinds.count("stream_up") == 1 and "stream_reconnecting" not in kinds and "stream_down" not in kinds
    (up,) = _events(events, "stream_up")
    (end,) = _events(events, "stream_end")
    assert end["frames"] == 30, "3 s at 10 fps, each frame once"
    played = _seconds(end["ts"]) - _seconds(up["ts"])
    assert played >= 2.0, f"a 3 s playlist played in {played:.2f} s"  # no upper bound: a busy machine may lag behind
    times = [f["time"] for f in _events(events, "frame")]
    assert times and times == sorted(times) and times[-1] < 3.0 and len(times) <= 7, f"2 frames per second of a 3 s stream, once: {times}"
    last = _events(events)[-1]
    assert last["event"] == "watch_stop" and last["reason"] == "all streams ended"


def test_malformed_url_is_one_error_before_any_work(tmp_path):
    events = tmp_path / "events.jsonl"
    code, stderr = _finish(_watch(["http://127.0.0.1:/x.m3u8"], Path("unused-adm.pt"), Path("unused-student.pth"), events, "-q"), timeout=180)
    assert code == 2 and stderr.strip() == "streamdet: error: http://127.0.0.1:/x.m3u8: malformed address (no port number after the colon)"
    assert not events.exists()


def test_address_ffmpeg_cannot_open_is_one_stream_error_not_retried(tiny_adm_ckpt, real_student_ckpt, tmp_path):
    """A well-formed URL of a protocol FFmpeg does not have: one `stream_error`, no reconnection, and the watch ends."""
    events = tmp_path / "events.jsonl"
    code, stderr = _finish(_watch(["nosuchproto://127.0.0.1/x"], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "60", "-q"), timeout=180)
    assert code == 0, stderr
    (error,) = _events(events, "stream_error")
    assert error["error"] == "nosuchproto://127.0.0.1/x: protocol not found (not retried: FFmpeg cannot open this address)"
    assert not _events(events, "stream_reconnecting") and _events(events)[-1]["reason"] == "all streams ended"


class _LiveHls(BaseHTTPRequestHandler):
    """A live HLS server: /stream.m3u8 lists the last 3 segments published so far (one more each segment's
    duration, no end tag), until `frozen` is set; then the playlist stops changing, as a hung packager's would."""

    root: Path
    entries: list[tuple[float, str]]
    started: float
    frozen: threading.Event

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/stream.m3u8"):
            body = self._playlist().encode()
        else:
            body = (self.root / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _playlist(self) -> str:
        if not self.frozen.is_set():
            type(self).elapsed = time.monotonic() - self.started
        starts = np.cumsum([0.0] + [d for d, _ in self.entries])
        published = int(np.searchsorted(starts[:-1], self.elapsed, side="right"))
        first = max(0, published - 3)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for duration, name in self.entries[first:published]:
            lines += [f"#EXTINF:{duration:.3f},", name]
        return "\n".join(lines) + "\n"

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_frozen_hls_server_is_a_stall_not_an_end(tiny_adm_ckpt, real_student_ckpt, tmp_path):
    _make_hls(tmp_path, frames=200)
    entries = [(float(d), name) for d, name in re.findall(r"#EXTINF:([0-9.]+),\n(\S+)", (tmp_path / "live.m3u8").read_text())]
    frozen = threading.Event()
    handler = type("Handler", (_LiveHls,), {"root": tmp_path, "entries": entries, "started": time.monotonic(), "frozen": frozen, "elapsed": 0.0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/stream.m3u8"
    events = tmp_path / "events.jsonl"
    proc = _watch([url], tiny_adm_ckpt, real_student_ckpt, events, "--duration", "60", "--timeout", "2", "--max-backoff", "1", "--log-frames", "-q")
    try:
        _wait_for(lambda: len(_events(events, "frame")) >= 3, 60, "frames of the live playlist")
        frozen.set()
        _wait_for(lambda: _events(events, "stream_down"), 30, "the stall to be reported")
    finally:
        code, stderr = _terminate(proc)
        httpd.shutdown()
        httpd.server_close()
    assert code == 0, stderr
    everything = [e for e in _events(events) if e.get("stream") == url]
    kinds = [e["event"] for e in everything]
    down = kinds.index("stream_down")
    assert everything[down]["reason"] == f"{url}: no data for 2 s (stalled)"
    assert everything[down]["frames"] > 0 and kinds[:down].count("stream_up") == 1
    assert "stream_reconnecting" not in kinds[:down] and "frame" in kinds[:down], "reported while that connection was the live one"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_soak_memory_and_queues_stay_flat_and_sigterm_writes_summaries(server, tiny_adm_ckpt, fake_student_ckpt, tmp_path):
    events = tmp_path / "events.jsonl"
    urls = [server.url("/test"), server.url("/cam2")]
    proc = _watch(urls, tiny_adm_ckpt, fake_student_ckpt, events, "--fps", "10", "--status-every", "2", "--window", "3", "-q")
    try:
        _wait_for(lambda: len(_events(events, "status")) >= 8, 120, "four rounds of status events (the warm-up)")
        rss = []
        for _ in range(20):  # one sample per round of status events: the watch's own clock, not the test's
            seen = len(_events(events, "status"))
            _wait_for(lambda: len(_events(events, "status")) >= seen + len(urls), 120, "the next round of status events")
            rss.append(_rss_kb(proc.pid))
        proc.send_signal(signal.SIGTERM)
        code, stderr = _finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    growth_mb = (max(rss[len(rss) // 2 :]) - max(rss[: len(rss) // 2])) / 1024
    assert growth_mb < 25, f"RSS grew by {growth_mb:.1f} MB over 20 rounds of status: {rss}"
    statuses = _events(events, "status")
    assert all(s["pending"] <= len(urls) for s in statuses)
    assert [s for s in statuses if s["analysed"] > 0], "frames are analysed throughout"
    summaries = _events(events, "summary")
    assert sorted(s["stream"] for s in summaries) == sorted(urls)
    for s in summaries:
        assert s["analysed"] > 0 and s["sampled"] == s["analysed"] + s["dropped"], "every picked frame is scored or counted as dropped"
    assert _events(events)[-1]["event"] == "watch_stop" and _events(events)[-1]["reason"] == "signal SIGTERM"
