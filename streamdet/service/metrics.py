"""The service's Prometheus metrics (prometheus_client), in a registry of its own, read at `/metrics`.

Queue depth and jobs by status are read from the job table at scrape time, so they are right after a restart;
frames, model calls, batch fill and job latency are counted by this process from its start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

RATE_SPAN_S = 30.0
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FILL_BUCKETS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


class _TableCollector(Collector):
    """Jobs by status and the queue depth, from the job table; frames per second over the last RATE_SPAN_S."""

    def __init__(self, counts: Callable[[], dict[str, int]], rate: Callable[[], float]) -> None:
        self._counts = counts
        self._rate = rate

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        jobs = GaugeMetricFamily("streamdet_serve_jobs", "Jobs in the job table by status.", labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily("streamdet_serve_queue_depth", "Jobs accepted and waiting to run.", value=counts.get("queued", 0))
        yield GaugeMetricFamily("streamdet_serve_frames_per_second", f"Frames scored per second over the last {RATE_SPAN_S:g} s.", value=self._rate())


class Metrics:
    """Counters and histograms of the scoring loop and of finished jobs."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.frames = Counter("streamdet_serve_frames_scored", "Frames scored.", registry=self.registry)
        self.calls = Counter("streamdet_serve_model_calls", "Model calls (each carries frames of one or more jobs).", registry=self.registry)
        self.fill = Histogram("streamdet_serve_batch_fill", "Frames per model call over the batch size.", buckets=FILL_BUCKETS, registry=self.registry)
        self.latency = Histogram("streamdet_serve_job_latency_seconds", "Seconds from a job's acceptance to its result.", ["status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rejected = Counter("streamdet_serve_rejected", "Requests refused because a queue was full.", ["reason"], registry=self.registry)
        self._recent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()
        self._durations: deque[float] = deque(maxlen=50)
        self.registry.register(_TableCollector(counts, self.rate))

    def sent(self, frames: int, batch_size: int) -> None:
        """One model call of `frames` frames was sent."""
        self.calls.inc()
        self.fill.observe(frames / batch_size)

    def scored(self, frames: int) -> None:
        """`frames` more frames have their scores."""
        self.frames.inc(frames)
        with self._lock:
            self._recent.append((time.monotonic(), frames))

    def finished(self, status: str, seconds: float) -> None:
        """A job ended with `status`, `seconds` after it was accepted."""
        self.latency.labels(status=status).observe(seconds)
        with self._lock:
            self._durations.append(seconds)

    def rate(self) -> float:
        """Frames scored per second over the last RATE_SPAN_S seconds."""
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0][0] < now - RATE_SPAN_S:
                self._recent.popleft()
            return sum(n for _, n in self._recent) / RATE_SPAN_S

    def typical_job_s(self) -> float:
        """The mean time from acceptance to result of the last jobs (1 s before any has finished)."""
        with self._lock:
            return sum(self._durations) / len(self._durations) if self._durations else 1.0

    def text(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)
