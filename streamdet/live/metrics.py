"""Health of each watched stream, and the same figures as Prometheus metrics (prometheus_client) over HTTP.

Counters (frames received, analysed, dropped, corrupt packets, reconnect attempts, alerts) run from the
start of the watch. The analysed rate and the latency percentiles (frame arrival → score) cover the last
`HEALTH_SPAN_S` seconds, so they describe the stream now rather than its whole history.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable, Iterator, Mapping, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamdet.errors import ConfigError

HEALTH_SPAN_S = 30.0
_MAX_SAMPLES = 4096
COUNTERS = ("received", "sampled", "analysed", "dropped", "score_errors", "corrupt", "reconnects", "alerts")


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
        """Record the stream's state: connecting, up, down, reconnecting, ended (final: later states are ignored)."""
        with self._lock:
            if self.state != "ended":
                self.state = state

    def finish(self) -> None:
        """The watch is over: the state is `ended` for good, whatever a late reader thread still reports."""
        self.set_state("ended")

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


LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_GAUGES = [
    ("streamdet_stream_up", "1 while the stream is connected and delivering frames.", lambda s: s["state"] == "up"),
    ("streamdet_analysed_fps", f"Frames scored per second over the last {HEALTH_SPAN_S:g} s.", lambda s: s["analysed_fps"]),
    ("streamdet_window_score", "Current window score (absent until the window holds enough frames).", lambda s: s["window_score"]),
    ("streamdet_window_frames", "Frames in the current window.", lambda s: s["window_frames"]),
    ("streamdet_alert_active", "1 while an alert is raised.", lambda s: s["alert"]),
]
_COUNTERS = [
    ("streamdet_frames_received", "Frames decoded from the stream.", "received"),
    ("streamdet_frames_sampled", "Frames picked at the analysis rate.", "sampled"),
    ("streamdet_frames_analysed", "Frames scored by the detector.", "analysed"),
    ("streamdet_frames_dropped", "Picked frames replaced by a newer one before the detector got to them.", "dropped"),
    ("streamdet_score_errors", "Frames whose score was not a finite number (never fed into a window).", "score_errors"),
    ("streamdet_packets_corrupt", "Packets or frames skipped as corrupt.", "corrupt"),
    ("streamdet_reconnects", "Reconnection attempts.", "reconnects"),
    ("streamdet_alerts", "Alerts raised.", "alerts"),
]


class _HealthCollector(Collector):
    """Reads every stream's health figures at scrape time (counters as `_total`, gauges, pending frames)."""

    def __init__(self, health: Mapping[str, StreamHealth], pending: Callable[[], int]) -> None:
        self._health = health
        self._pending = pending

    def collect(self) -> Iterator[Metric]:
        snaps = [h.snapshot() for h in self._health.values()]
        for name, help_text, key in _COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=["stream"])
            for snap in snaps:
                family.add_metric([snap["stream"]], snap[key])
            yield family
        for name, help_text, value in _GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["stream"])
            for snap in snaps:
                if value(snap) is not None:
                    family.add_metric([snap["stream"]], float(value(snap)))
            yield family
        yield GaugeMetricFamily("streamdet_pending_frames", "Frames waiting for the detector (at most one per stream).", value=self._pending())


class WatchMetrics:
    """One watch's Prometheus metrics in a registry of its own: the health figures and a latency histogram.

    Latency (frame arrival → score) is a histogram, so quantiles aggregate across watch instances with
    `histogram_quantile`; the p50/p95 of the status events are computed separately over the last 30 s.
    """

    def __init__(self, health: Mapping[str, StreamHealth], pending: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "streamdet_latency_seconds", "Seconds from a frame's arrival to its score.", ["stream"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        for stream in health:
            self.latency.labels(stream=stream)
        self.registry.register(_HealthCollector(health, pending))
        self.port: int | None = None
        self._server: WSGIServer | None = None

    def observe(self, stream: str, latency_s: float) -> None:
        """Count one scored frame's latency in the histogram."""
        self.latency.labels(stream=stream).observe(latency_s)

    def text(self) -> str:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int) -> int:
        """Serve the metrics at http://127.0.0.1:PORT/metrics from a background thread; return the port."""
        try:
            self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
        self.port = self._server.server_address[1]
        return self.port

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
