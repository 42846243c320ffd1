"""Health of each watched stream, and the same figures as Prometheus text metrics over HTTP.

Counters (frames received, analysed, dropped, corrupt packets, reconnect attempts, alerts) run from the
start of the watch. The analysed rate and the latency percentiles (frame arrival → score) cover the last
`HEALTH_SPAN_S` seconds, so they describe the stream now rather than its whole history.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

from streamdet.errors import ConfigError

HEALTH_SPAN_S = 30.0
_MAX_SAMPLES = 4096
COUNTERS = ("received", "sampled", "analysed", "dropped", "corrupt", "reconnects", "alerts")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-quantile (0..1) of `values` by linear interpolation between order statistics; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class StreamHealth:
    """Thread-safe health figures of one stream: state, counters, recent analysed rate and latency."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.state = "connecting"
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.latency_sum = 0.0
        self.window_score: float | None = None
        self.window_frames = 0
        self.alert = False
        self._recent: deque[tuple[float, float]] = deque(maxlen=_MAX_SAMPLES)
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to counter `name`."""
        with self._lock:
            self.counts[name] += n

    def set_state(self, state: str) -> None:
        """Record the stream's state: connecting, up, down, reconnecting, ended."""
        with self._lock:
            self.state = state

    def analysed(self, latency_s: float, done_mono: float) -> None:
        """Record one scored frame and its latency from arrival to score."""
        with self._lock:
            self.counts["analysed"] += 1
            self.latency_sum += latency_s
            self._recent.append((done_mono, latency_s))

    def window(self, score: float | None, frames: int, alert: bool) -> None:
        """Record the stream's current window score, window size and alert state."""
        with self._lock:
            self.window_score, self.window_frames, self.alert = score, frames, alert

    def snapshot(self, now_mono: float | None = None) -> dict:
        """The current figures as a JSON-ready dict (latencies in milliseconds)."""
        now = time.monotonic() if now_mono is None else now_mono
        with self._lock:
            while self._recent and self._recent[0][0] < now - HEALTH_SPAN_S:
                self._recent.popleft()
            latencies = [lat for _, lat in self._recent]
            span = min(HEALTH_SPAN_S, max(now - self._since, 1e-9))
            counts = dict(self.counts)
            p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
            offered = counts["analysed"] + counts["dropped"]
            return {
                "stream": self.stream,
                "state": self.state,
                "analysed_fps": round(len(latencies) / span, 3),
                **counts,
                "drop_rate": round(counts["dropped"] / offered, 4) if offered else 0.0,
                "latency_p50_ms": None if p50 is None else round(p50 * 1000, 1),
                "latency_p95_ms": None if p95 is None else round(p95 * 1000, 1),
                "latency_sum_s": round(self.latency_sum, 6),
                "window_score": None if self.window_score is None else round(self.window_score, 4),
                "window_frames": self.window_frames,
                "alert": self.alert,
            }


def _label(value: str) -> str:
    """A Prometheus label value, escaped (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int | bool | None) -> str:
    """A sample value in the text format (NaN for unknown)."""
    if value is None:
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


_FAMILIES = [
    ("streamdet_stream_up", "gauge", "1 if the stream is connected and delivering frames.", lambda s: s["state"] == "up"),
    ("streamdet_frames_received_total", "counter", "Frames decoded from the stream.", lambda s: s["received"]),
    ("streamdet_frames_sampled_total", "counter", "Frames picked at the analysis rate.", lambda s: s["sampled"]),
    ("streamdet_frames_analysed_total", "counter", "Frames scored by the detector.", lambda s: s["analysed"]),
    ("streamdet_frames_dropped_total", "counter", "Picked frames replaced by a newer one before the detector got to them.", lambda s: s["dropped"]),
    ("streamdet_packets_corrupt_total", "counter", "Packets or frames skipped as corrupt.", lambda s: s["corrupt"]),
    ("streamdet_reconnects_total", "counter", "Reconnection attempts.", lambda s: s["reconnects"]),
    ("streamdet_alerts_total", "counter", "Alerts raised.", lambda s: s["alerts"]),
    ("streamdet_analysed_fps", "gauge", f"Frames scored per second over the last {HEALTH_SPAN_S:g} s.", lambda s: s["analysed_fps"]),
    ("streamdet_window_score", "gauge", "Current window score (NaN until the window holds enough frames).", lambda s: s["window_score"]),
    ("streamdet_window_frames", "gauge", "Frames in the current window.", lambda s: s["window_frames"]),
    ("streamdet_alert_active", "gauge", "1 while an alert is raised.", lambda s: s["alert"]),
]


def exposition(snapshots: Sequence[dict], pending: int) -> str:
    """Prometheus text exposition format (version 0.0.4) for the given stream snapshots."""
    lines = []
    for name, kind, help_text, value in _FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{stream="{_label(s["stream"])}"}} {_number(value(s))}' for s in snapshots]
    name = "streamdet_latency_seconds"
    lines += [f"# HELP {name} Seconds from frame arrival to its score (quantiles over the last {HEALTH_SPAN_S:g} s).", f"# TYPE {name} summary"]
    for s in snapshots:
        label = f'stream="{_label(s["stream"])}"'
        for q, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
            ms = s[key]
            lines.append(f'{name}{{{label},quantile="{q}"}} {_number(None if ms is None else ms / 1000)}')
        lines.append(f"{name}_sum{{{label}}} {_number(float(s['latency_sum_s']))}")
        lines.append(f"{name}_count{{{label}}} {_number(s['analysed'])}")
    lines += ["# HELP streamdet_pending_frames Frames waiting for the detector (at most one per stream).", "# TYPE streamdet_pending_frames gauge"]
    lines.append(f"streamdet_pending_frames {pending}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `render()` as text metrics at http://127.0.0.1:PORT/metrics from a background thread."""

    def __init__(self, port: int, render: Callable[[], str]) -> None:
        handler = _handler(render)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="streamdet-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


def _handler(render: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    """A request handler class answering GET /metrics with `render()`, anything else with 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep scrapes out of the operator's stderr."""

    return Handler
