"""The parts of `streamdet watch` that need no stream: window and alerts, clocks, mailbox, metrics, webhook, options."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from streamdet.aggregate import file_score
from streamdet.cli import app
from streamdet.errors import ConfigError
from streamdet.live.clock import RateSampler, StreamClock
from streamdet.live.events import EventLog
from streamdet.live.mailbox import LatestFrames, LiveFrame
from streamdet.live.metrics import MetricsServer, StreamHealth, exposition, percentile
from streamdet.live.source import SourceSettings, backoff_delay
from streamdet.live.targets import StreamTarget, open_options, parse_targets, redact
from streamdet.detector import Detector
from streamdet.live.watch import Watch, WatchSettings
from streamdet.live.webhook import Webhook
from streamdet.live.window import AlertRule, AlertWindow, default_min_frames

from .media import make_video

runner = CliRunner()


def _feed(window: AlertWindow, scores: list[float], start: float = 0.0, step: float = 0.5) -> list[str]:
    changes = []
    for i, score in enumerate(scores):
        change = window.add(start + i * step, score)
        if change is not None:
            changes.append(change.kind)
    return changes


def test_window_score_is_the_file_rule_over_the_last_window_seconds():
    window = AlertWindow(AlertRule(window_s=2.0, raise_at=0.5, clear_at=0.3, min_frames=3))
    scores = [0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.05]
    _feed(window, scores)
    last_four = scores[-4:]  # times 1.5 .. 3.0 lie within 2 s of the newest (3.0); 1.0 does not
    assert len(window) == 4
    assert window.score == pytest.approx(file_score(last_four, 0.25))


def test_no_score_and_no_alert_below_min_frames():
    window = AlertWindow(AlertRule(window_s=10.0, raise_at=0.5, clear_at=0.3, min_frames=5))
    assert _feed(window, [1.0, 1.0, 1.0, 1.0]) == [] and window.score is None
    assert _feed(window, [1.0], start=2.0) == ["raised"]


def test_one_noisy_frame_does_not_raise_an_alert():
    window = AlertWindow(AlertRule(window_s=10.0, raise_at=0.5, clear_at=0.35, min_frames=10))
    changes = _feed(window, [0.05] * 12 + [1.0] + [0.05] * 12)
    assert changes == [] and not window.active


def test_hysteresis_raises_once_and_clears_only_below_clear_at():
    window = AlertWindow(AlertRule(window_s=4.0, raise_at=0.5, clear_at=0.3, min_frames=4))
    # a score hovering around raise_at (0.45..0.55) raises once and never flaps
    hovering = [0.55, 0.45] * 10
    assert _feed(window, [0.9] * 8 + hovering) == ["raised"]
    assert window.active
    assert _feed(window, [0.1] * 8, start=20.0) == ["cleared"] and not window.active


def test_transition_reports_span_frames_and_flagged():
    window = AlertWindow(AlertRule(window_s=3.0, raise_at=0.5, clear_at=0.3, min_frames=3))
    window.add(0.0, 0.1)
    window.add(1.0, 0.9)
    change = window.add(2.0, 0.95)
    assert change is not None and change.kind == "raised"
    assert (change.start, change.end, change.frames, change.flagged) == (0.0, 2.0, 3, 2)
    assert change.score == pytest.approx(0.95)


def test_alert_rule_and_settings_reject_bad_values():
    with pytest.raises(ConfigError, match="clear-at 0.6 and --raise-at 0.5"):
        AlertRule(raise_at=0.5, clear_at=0.6)
    with pytest.raises(ConfigError, match="--window must be positive"):
        AlertRule(window_s=0)
    with pytest.raises(ConfigError, match="holds at most 4 frames"):
        WatchSettings(SourceSettings(fps=2), AlertRule(window_s=2, min_frames=5))
    with pytest.raises(ConfigError, match="--rtsp-transport http"):
        WatchSettings(SourceSettings(rtsp_transport="http"), AlertRule())
    assert default_min_frames(10, 2) == 10 and default_min_frames(1, 2) == 2 and default_min_frames(4, 1) == 3


def test_stream_clock_follows_pts_and_continues_across_reconnects_and_jumps():
    clock = StreamClock()
    assert clock.time(None, 100.0) == 0.0
    assert clock.time(5.1, 100.05) == pytest.approx(0.05)
    assert clock.time(5.6, 100.3) == pytest.approx(0.55)
    # pts jumps backwards within a connection: time carries on by the wall clock
    assert clock.time(1.0, 100.5) == pytest.approx(0.75)
    assert clock.time(1.5, 100.6) == pytest.approx(1.25)
    # reconnect 10 s later: pts start over, time continues with the gap
    clock.reconnected()
    assert clock.time(0.0, 110.6) == pytest.approx(11.25)
    assert clock.time(0.5, 110.7) == pytest.approx(11.75)
    # a frame without pts: time advances with the wall clock
    assert clock.time(None, 111.7) == pytest.approx(12.75)


def test_rate_sampler_keeps_an_even_rate_of_stream_time():
    sampler = RateSampler(2.0)
    kept = [i for i in range(30) if sampler.due(i / 10)]
    assert kept == [0, 5, 10, 15, 20, 25]
    uneven = RateSampler(2.0)
    kept_times = [t for t in np.arange(0, 3, 1 / 3) if uneven.due(float(t))]
    assert len(kept_times) == 6
    gap = RateSampler(2.0)
    assert [t for t in (0.0, 0.5, 100.0, 100.1, 100.5) if gap.due(t)] == [0.0, 0.5, 100.0, 100.5]


def _frame(stream: str, index: int) -> LiveFrame:
    return LiveFrame(stream, index, index / 10, index / 10, time.time(), time.monotonic(), np.zeros((4, 4, 3), np.uint8))


def test_latest_frames_keeps_only_the_newest_per_stream():
    box = LatestFrames()
    assert box.offer(_frame("a", 0)) is None
    dropped = box.offer(_frame("a", 1))
    assert dropped is not None and dropped.index == 0
    box.offer(_frame("b", 0))
    assert len(box) == 2
    taken = box.take(8, 0.0)
    assert [(f.stream, f.index) for f in taken] == [("a", 1), ("b", 0)]
    assert len(box) == 0 and box.take(8, 0.05) == []


def test_latest_frames_take_waits_for_a_frame_and_respects_the_limit():
    box = LatestFrames()
    offered = threading.Event()

    def offer_all() -> None:
        for s in "abc":
            box.offer(_frame(s, 0))
        offered.set()

    threading.Timer(0.1, offer_all).start()
    first = box.take(2, 60.0)
    assert first and len(first) <= 2, "take waits for frames that arrive during its wait"
    offered.wait()
    rest = box.take(2, 0.0)
    assert sorted(f.stream for f in first + rest) == ["a", "b", "c"]


def test_latest_frames_serves_every_stream_in_turn_when_batches_are_full():
    box = LatestFrames()
    served: dict[str, int] = {}
    for round_ in range(12):
        for stream in "abcdef":
            box.offer(_frame(stream, round_))  # every stream has a newer frame each round
        for frame in box.take(2, 0.0):
            served[frame.stream] = served.get(frame.stream, 0) + 1
    assert served == dict.fromkeys("abcdef", 4), "6 streams, 2 per batch, 12 batches: 4 turns each"


def test_frames_of_several_streams_share_one_model_call_and_keep_their_identity(tiny_config, tiny_adm_ckpt, student_ckpt):
    detector = Detector.load(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt)
    targets = [StreamTarget(f"rtsp://cam{i}/live", f"rtsp://cam{i}/live", "network") for i in range(3)]
    out = io.StringIO()
    settings = WatchSettings(SourceSettings(fps=2), AlertRule(window_s=10, min_frames=1), log_frames=True)
    watch = Watch(detector, targets, settings, EventLog(out))
    rng = np.random.default_rng(0)
    images = {t.id: rng.integers(0, 256, (40 + 8 * i, 64 + 16 * i, 3), dtype=np.uint8) for i, t in enumerate(targets)}
    for i, t in enumerate(targets):
        watch.mailbox.offer(LiveFrame(t.id, 7 + i, 1.5 * i, 1.5 * i, time.time(), time.monotonic(), images[t.id]))
    assert watch.step(0.0) == 3 and watch.model_calls == 1
    frames = [json.loads(line) for line in out.getvalue().splitlines() if '"frame"' in line]
    assert {f["batch"] for f in frames} == {1}
    for f in frames:
        alone = detector.score(detector.preprocess([images[f["stream"]]])).item()
        assert f["score"] == pytest.approx(alone, rel=1e-3), "each score belongs to its own stream's frame"
        assert f["index"] == 7 + [t.id for t in targets].index(f["stream"])
    scores = sorted(f["score"] for f in frames)
    assert scores[1] > scores[0] * 1.01 and scores[2] > scores[1] * 1.01, "the random student tells the frames apart"


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(a, 1.0, 10.0) for a in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(500, 1.0, 60.0) == 60.0


def test_percentile_interpolates():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


_SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? (NaN|-?[0-9.e+-]+)$')


def test_exposition_is_valid_prometheus_text():
    health = StreamHealth('rtsp://cam/"x"\\y')
    health.count("received", 10)
    health.count("dropped", 2)
    health.analysed(0.25, time.monotonic())
    text = exposition([health.snapshot(), StreamHealth("b").snapshot()], pending=1)
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.match(line), line
    assert 'streamdet_frames_dropped_total{stream="rtsp://cam/\\"x\\"\\\\y"} 2' in text
    assert 'streamdet_latency_seconds{stream="b",quantile="0.5"} NaN' in text
    assert 'streamdet_latency_seconds_count{stream="rtsp://cam/\\"x\\"\\\\y"} 1' in text
    assert "streamdet_pending_frames 1" in text


def test_metrics_server_serves_metrics_and_reports_a_busy_port():
    server = MetricsServer(0, lambda: "streamdet_pending_frames 0\n")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert response.read() == b"streamdet_pending_frames 0\n"
        with pytest.raises(ConfigError, match=f"--metrics-port {server.port}: cannot listen on 127.0.0.1:{server.port}"):
            MetricsServer(server.port, lambda: "")
    finally:
        server.close()


class _Flaky(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        _Flaky.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(_Flaky.answers.pop(0) if _Flaky.answers else 200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def flaky_server():
    _Flaky.answers, _Flaky.bodies = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


def test_webhook_retries_server_errors_and_reports_give_ups(flaky_server, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    errors: list[str] = []
    _Flaky.answers = [503, 200, 400]
    hook = Webhook(flaky_server, timeout_s=2, retries=2, backoff_s=0.05, on_error=errors.append)
    hook.send({"event": "alert_raised", "n": 1})
    hook.send({"event": "alert_cleared", "n": 2})
    hook.close()
    assert [b["n"] for b in _Flaky.bodies] == [1, 1, 2], "503 is retried, 400 is not"
    assert hook.sent == 1 and hook.failed == 1
    assert errors == [f"{flaky_server}: alert_cleared not delivered (HTTP 400 Bad Request)"]


def test_webhook_never_blocks_and_drops_the_oldest_when_full():
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []
    answered_never = threading.Event()

    def accept_and_stay_silent() -> None:
        connections.append(listener.accept()[0])
        answered_never.set()

    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    errors: list[str] = []
    hook = Webhook(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", timeout_s=60, retries=0, queue_size=2, on_error=errors.append)
    hook.send({"event": "alert_raised", "n": 0})
    assert answered_never.wait(30), "the delivery thread connects"
    for n in range(1, 20):  # the delivery of event 0 hangs on a server that never answers: send must not wait for it
        hook.send({"event": "alert_raised", "n": n})
    assert (hook.dropped, hook.sent, hook.failed) == (17, 0, 0), "the queue keeps the 2 newest, events 1-17 are dropped"
    connections[0].close()
    listener.close()
    hook.close(wait_s=10.0)
    assert (hook.sent, hook.failed) == (0, 3)
    assert "connection refused" in errors[-1].lower(), errors


def test_webhook_url_must_be_http():
    with pytest.raises(ConfigError, match="--webhook ftp://x: not an http"):
        Webhook("ftp://x")


def test_event_log_writes_flushed_json_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event":"earlier"}\n')
    log = EventLog.open(path)
    log.emit("stream_up", stream="a", width=64)
    assert json.loads(path.read_text().splitlines()[1])["event"] == "stream_up", "flushed at once, appended"
    log.close()
    log.emit("late", stream="a")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["earlier", "stream_up"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[1]["ts"])


def test_targets_are_classified_redacted_and_checked(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", 5)
    targets = parse_targets(["rtsp://admin:secret@cam.local:554/live", "/dev/video7", str(clip)], realtime=True)
    assert [(t.id, t.kind) for t in targets] == [
        ("rtsp://admin:***@cam.local:554/live", "network"),
        ("/dev/video7", "device"),
        (str(clip), "file"),
    ]
    assert redact("http://host/x") == "http://host/x"
    with pytest.raises(ConfigError, match="add --realtime"):
        parse_targets([str(clip)], realtime=False)
    with pytest.raises(ConfigError, match="no such file or directory"):
        parse_targets([str(tmp_path / "missing.mp4")], realtime=True)
    with pytest.raises(ConfigError, match="given twice"):
        parse_targets(["rtsp://a/x", "rtsp://a/x"], realtime=False)


def test_open_options_use_the_timeouts_ffmpeg_accepts():
    rtsp = open_options(StreamTarget("r", "rtsp://h/x", "network"), "udp", 2.5)
    assert rtsp["rtsp_transport"] == "udp" and rtsp["timeout"] == "2500000" and "rw_timeout" not in rtsp
    for url in ("rtmp://h/app/key", "https://h/live.m3u8"):
        options = open_options(StreamTarget("x", url, "network"), "tcp", 2.5)
        assert options["rw_timeout"] == "2500000" and "timeout" not in options
    assert open_options(StreamTarget("f", "/tmp/a.mp4", "file"), "tcp", 2.5) == {}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["CLIP"], "a local file is not live; add --realtime"),
        (["MISSING", "--realtime"], "no such file or directory"),
        (["rtsp://h/x", "--raise-at", "0.4", "--clear-at", "0.5"], "--clear-at 0.5 and --raise-at 0.4"),
        (["rtsp://h/x", "--window", "2", "--min-frames", "9"], "--min-frames 9: a 2 s window at 2 fps holds at most 4 frames"),
        (["rtsp://h/x", "--rtsp-transport", "sctp"], "--rtsp-transport sctp: use tcp or udp"),
        (["rtsp://h/x", "--fps", "0"], "--fps must be positive"),
    ],
)
def test_bad_watch_options_are_one_line_errors(args, problem, tmp_path, tiny_adm_ckpt, real_student_ckpt):
    clip = make_video(tmp_path / "clip.mp4", 5)
    args = [str(clip) if a == "CLIP" else str(tmp_path / "missing.mp4") if a == "MISSING" else a for a in args]
    result = runner.invoke(app, ["watch", *args, "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(real_student_ckpt), "-q"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and problem in lines[0], result.stderr
