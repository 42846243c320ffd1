"""The parts of `streamdet watch` that need no stream: window and alerts, clocks, mailbox, metrics, webhook, options."""

from __future__ import annotations

import io
import json
import random
import re
import socket
import threading
import time
from pathlib import Path
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from streamdet.cli import app
from streamdet.errors import ConfigError
from streamdet.live.clock import RateSampler, StreamClock
from streamdet.live.events import EventLog
from streamdet.live.mailbox import LatestFrames, LiveFrame
from streamdet.live.metrics import StreamHealth, WatchMetrics, percentile
from streamdet.live.source import SourceSettings, backoff_delay
from streamdet.live.targets import StreamTarget, open_options, parse_targets, redact
from streamdet.detector import Detector
from streamdet.live.watch import Watch, WatchSettings
from streamdet.live.webhook import Webhook
from streamdet.live.window import AlertRule, AlertWindow, default_min_frames

from .checkpoints import random_student, save_student
from .media import make_video
from .rtsp import free_port
from .engines import configured, engine

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
    assert window.score == pytest.approx(0.8), "the mean of the top quarter of 4 scores is their highest, 0.8 (at t=2.5)"
    assert last_four == [0.3, 0.4, 0.8, 0.05]


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
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=student_ckpt))
    targets = [StreamTarget(f"rtsp://cam{i}/live", f"rtsp://cam{i}/live", "network") for i in range(3)]
    out = io.StringIO()
    settings = WatchSettings(SourceSettings(fps=2), AlertRule(window_s=10, min_frames=1), log_frames=True)
    watch = Watch(engine(detector), targets, settings, EventLog(out))
    rng = np.random.default_rng(0)
    images = {t.id: rng.integers(0, 256, (40 + 8 * i, 64 + 16 * i, 3), dtype=np.uint8) for i, t in enumerate(targets)}
    for i, t in enumerate(targets):
        watch.mailbox.offer(LiveFrame(t.id, 7 + i, 1.5 * i, 1.5 * i, time.time(), time.monotonic(), images[t.id]))
    assert watch.step(0.0) == 3 and watch.model_calls == 1
    frames = [json.loads(line) for line in out.getvalue().splitlines() if '"frame"' in line]
    assert {f["call"] for f in frames} == {1} and {f["batch_size"] for f in frames} == {3}
    for f in frames:
        alone = detector.score(detector.preprocess([images[f["stream"]]])).item()
        assert f["score"] == pytest.approx(alone, rel=1e-3), "each score belongs to its own stream's frame"
        assert f["index"] == 7 + [t.id for t in targets].index(f["stream"])
    scores = sorted(f["score"] for f in frames)
    assert scores[1] > scores[0] * 1.01 and scores[2] > scores[1] * 1.01, "the random student tells the frames apart"


@pytest.fixture(scope="module")
def nan_student_ckpt(tmp_path_factory) -> Path:
    """A student whose head gives NaN for every frame (as a diverged training run would)."""
    return save_student(tmp_path_factory.mktemp("nan") / "student_nan.pth", random_student(seed=4, bias=float("nan")))


def test_non_finite_scores_are_stream_errors_never_window_scores(tiny_config, tiny_adm_ckpt, nan_student_ckpt):
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=nan_student_ckpt))
    target = StreamTarget("rtsp://cam/live", "rtsp://cam/live", "network")
    out = io.StringIO()
    settings = WatchSettings(SourceSettings(fps=2), AlertRule(window_s=10, min_frames=1), log_frames=True)
    watch = Watch(engine(detector), [target], settings, EventLog(out))
    for index in range(3):
        watch.mailbox.offer(LiveFrame(target.id, index, index / 2, index / 2, time.time(), time.monotonic(), np.zeros((48, 64, 3), np.uint8)))
        watch.step(0.0)
    watch._status()
    text = out.getvalue()
    assert "NaN" not in text and "Infinity" not in text
    events = [json.loads(line) for line in text.splitlines()]
    errors = [e for e in events if e["event"] == "stream_error"]
    assert [e["frame"] for e in errors] == [0, 1, 2]
    assert errors[0]["error"].startswith("rtsp://cam/live: the detector gave a non-finite score (nan) for frame 0")
    assert not [e for e in events if e["event"] in ("frame", "alert_raised")]
    (status,) = [e for e in events if e["event"] == "status"]
    assert status["score_errors"] == 3 and status["analysed"] == 0 and status["window_score"] is None
    assert len(watch.windows[target.id]) == 0


@pytest.mark.slow
def test_nothing_is_written_after_watch_stop_even_by_a_reader_blocked_in_an_open(tiny_config, tiny_adm_ckpt, real_student_ckpt, tmp_path):
    """A server that accepts and never answers keeps the reader in its open past the watch's end (timeout 4 s,
    duration 0.5 s, readers waited for 2 s): its error must not follow watch_stop, and its summary is final."""
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=real_student_ckpt))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x"
    path = tmp_path / "events.jsonl"
    log = EventLog.open(path)
    settings = WatchSettings(SourceSettings(timeout_s=4.0), AlertRule(window_s=10, min_frames=1), duration_s=0.5)
    watch = Watch(engine(detector), [StreamTarget(url, url, "network")], settings, log)
    try:
        (summary,) = watch.run()
        assert not watch.sources[0].finished, "the reader is still blocked in its open when the watch ends"
        watch.sources[0].join(10)
        assert watch.sources[0].finished
    finally:
        silent.close()
        log.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[-1]["event"] == "watch_stop", [e["event"] for e in events]
    assert summary["state"] == "ended" and events[-2] == summary


def test_backoff_is_jittered_within_the_upper_half_of_a_doubling_ceiling_capped_at_max():
    rng = random.Random(7)
    ceilings = {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0, 5: 10.0, 500: 10.0}  # doubling from 1 s, capped at 10 s
    for attempt, ceiling in ceilings.items():
        delays = [backoff_delay(attempt, 1.0, 10.0, rng) for _ in range(2000)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 1900, "cameras that dropped together do not reconnect in lockstep"
        quarters = np.histogram(delays, bins=4, range=(ceiling / 2, ceiling))[0]
        assert quarters.min() > 400, f"spread evenly over [{ceiling / 2}, {ceiling}]: {quarters}"


def test_percentile_interpolates():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def _scrape(url: str) -> dict[str, list]:
    """GET the metrics page and parse it with prometheus_client's own parser: family name → samples."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {family.name: (family.type, family.samples) for family in text_string_to_metric_families(text)}


def _value(samples: list, name: str, **labels: str) -> float:
    (match,) = [s.value for s in samples if s.name == name and s.labels == labels]
    return match


def test_metrics_endpoint_serves_counters_gauges_and_a_latency_histogram(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    odd = 'rtsp://cam/"x"\\y'
    health = {odd: StreamHealth(odd), "b": StreamHealth("b")}
    health[odd].count("received", 10)
    health[odd].count("dropped", 2)
    health[odd].set_state("up")
    metrics = WatchMetrics(health, pending=lambda: 1)
    for latency in (0.02, 0.3, 3.0):
        metrics.observe(odd, latency)
    port = metrics.serve(0)
    try:
        families = _scrape(f"http://127.0.0.1:{port}/metrics")
        with pytest.raises(ConfigError, match=f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}"):
            WatchMetrics(health, pending=lambda: 0).serve(port)
    finally:
        metrics.close()
    kind, dropped = families["streamdet_frames_dropped"]
    assert kind == "counter" and _value(dropped, "streamdet_frames_dropped_total", stream=odd) == 2
    assert _value(families["streamdet_frames_received"][1], "streamdet_frames_received_total", stream="b") == 0
    assert _value(families["streamdet_stream_up"][1], "streamdet_stream_up", stream=odd) == 1
    assert _value(families["streamdet_stream_up"][1], "streamdet_stream_up", stream="b") == 0
    kind, latency = families["streamdet_latency_seconds"]
    assert kind == "histogram"
    buckets = {s.labels["le"]: s.value for s in latency if s.name.endswith("_bucket") and s.labels["stream"] == odd}
    assert (buckets["0.01"], buckets["0.025"], buckets["0.5"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (0, 1, 2, 2, 3, 3)
    assert _value(latency, "streamdet_latency_seconds_count", stream=odd) == 3
    assert _value(latency, "streamdet_latency_seconds_sum", stream=odd) == pytest.approx(3.32)
    assert _value(latency, "streamdet_latency_seconds_count", stream="b") == 0, "every stream has its histogram from the start"
    assert not [s for s in families["streamdet_window_score"][1]], "no window score before the window holds enough frames"
    assert families["streamdet_pending_frames"][1][0].value == 1


def test_each_watch_has_its_own_metrics_registry():
    first = WatchMetrics({"a": StreamHealth("a")}, pending=lambda: 0)
    second = WatchMetrics({"a": StreamHealth("a")}, pending=lambda: 0)
    first.observe("a", 0.1)
    assert 'streamdet_latency_seconds_count{stream="a"} 1.0' in first.text()
    assert 'streamdet_latency_seconds_count{stream="a"} 0.0' in second.text()


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


def test_finish_delivers_webhook_errors_first_and_then_refuses_every_event(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog.open(path)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    log.webhook = Webhook(dead, timeout_s=0.5, retries=0, on_error=lambda problem: log.emit("webhook_error", error=problem))
    log.emit("alert_raised", stream="a")
    log.finish("watch_stop", reason="test")
    log.emit("stream_up", stream="a")
    log.close()
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["alert_raised", "webhook_error", "watch_stop"]


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
        (["rtsp://h/x", "--rtsp-transport", "sctp"], "--rtsp-transport: expected one of 'tcp' or 'udp', got str 'sctp'"),
        (["rtsp://h/x", "--fps", "0"], "--fps: must be greater than 0, not 0.0"),
    ],
)
def test_bad_watch_options_are_one_line_errors(args, problem, tmp_path, tiny_adm_ckpt, real_student_ckpt):
    clip = make_video(tmp_path / "clip.mp4", 5)
    args = [str(clip) if a == "CLIP" else str(tmp_path / "missing.mp4") if a == "MISSING" else a for a in args]
    result = runner.invoke(app, ["watch", *args, "--config", "tiny", "--adm", str(tiny_adm_ckpt), "--student", str(real_student_ckpt), "-q"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and problem in lines[0], result.stderr
