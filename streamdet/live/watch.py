"""The watch runner: reader threads → latest-frame mailbox → one shared, batched detector → windows → events.

Frames of all streams share the detector's batches (one model call scores the waiting frames of several
streams). The main loop takes whatever frames are waiting, scores them, feeds each stream's window, and
writes events; every `status_every_s` it reports each stream's health. It ends on `stop` (a signal), after
`duration_s`, or when every stream has ended (files); then readers stop (one still blocked after a short
wait can write nothing more), the frames already waiting are still scored, a final summary per stream is
written (state `ended`), pending webhook deliveries get their chance, and `watch_stop` is the last event.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from streamdet.config import Config
from streamdet.errors import ConfigError
from streamdet.live.events import EventLog, Gate, utc_stamp
from streamdet.live.mailbox import LatestFrames, LiveFrame
from streamdet.live.metrics import StreamHealth, WatchMetrics
from streamdet.live.source import LiveSource, SourceSettings
from streamdet.live.targets import StreamTarget
from streamdet.live.window import AlertRule, AlertWindow, Transition, default_min_frames

if TYPE_CHECKING:
    from streamdet.engine import Engine

_SOURCE_JOIN_S = 2.0


@dataclass(frozen=True)
class WatchSettings:
    """Everything a watch needs besides the detector and the streams."""

    source: SourceSettings
    rule: AlertRule
    status_every_s: float = 30.0
    duration_s: float | None = None
    log_frames: bool = False
    metrics_port: int | None = None

    @classmethod
    def from_config(cls, config: Config) -> WatchSettings:
        """The settings of the config's `watch:` section, with the alert levels it leaves open derived as documented:
        raise at the threshold (HIGH with an uncertain band), clear at LOW or 0.15 below raise."""
        w = config.watch
        band = None if config.uncertain is None else (config.uncertain[0], config.uncertain[1])
        raise_at = w.raise_at if w.raise_at is not None else config.threshold if band is None else band[1]
        clear_at = w.clear_at
        if clear_at is None:
            clear_at = band[0] if band is not None and band[0] < raise_at else max(0.0, raise_at - 0.15)
        rule = AlertRule(w.window, raise_at, clear_at, w.min_frames or default_min_frames(w.window, w.fps), config.top_fraction, band, config.segment_gap_s)
        source = SourceSettings(fps=w.fps, realtime=w.realtime, rtsp_transport=w.rtsp_transport, timeout_s=w.timeout, max_backoff_s=w.max_backoff)
        return cls(source, rule, w.status_every, w.duration, w.log_frames, w.metrics_port)

    def __post_init__(self) -> None:
        if not self.source.fps > 0:
            raise ConfigError(f"--fps must be positive, not {self.source.fps}")
        if self.rule.min_frames > self.rule.window_s * self.source.fps + 1e-9:
            raise ConfigError(
                f"--min-frames {self.rule.min_frames}: a {self.rule.window_s:g} s window at {self.source.fps:g} fps holds "
                f"at most {int(self.rule.window_s * self.source.fps + 1e-9)} frames, so no alert could ever be raised"
            )
        if not self.status_every_s > 0:
            raise ConfigError(f"--status-every must be positive, not {self.status_every_s}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"--duration must be positive, not {self.duration_s}")
        if self.source.rtsp_transport not in ("tcp", "udp"):
            raise ConfigError(f"--rtsp-transport {self.source.rtsp_transport}: use tcp or udp")
        if not self.source.timeout_s > 0 or not self.source.max_backoff_s > 0:
            raise ConfigError("--timeout and --max-backoff must be positive")


class Watch:
    """One watch over several streams; `run` blocks until it ends and returns the summaries."""

    def __init__(
        self,
        engine: "Engine",
        targets: Sequence[StreamTarget],
        settings: WatchSettings,
        events: EventLog,
        stop: threading.Event | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.targets = list(targets)
        self.settings = settings
        self.events = events
        self.stop = stop or threading.Event()
        self.stop_reason = "stopped"
        self.on_line = on_line
        self.mailbox = LatestFrames()
        self.health = {t.id: StreamHealth(t.id) for t in self.targets}
        self.windows = {t.id: AlertWindow(settings.rule) for t in self.targets}
        self._readers_stop = threading.Event()
        self._reader_events = Gate(events.emit)
        self.sources = [
            LiveSource(t, settings.source, self.mailbox, self.health[t.id], self._reader_events, self._readers_stop) for t in self.targets
        ]
        self.metrics = WatchMetrics(self.health, lambda: len(self.mailbox))
        self.model_calls = 0  # detector calls on stream frames (the warm-up not counted)

    def request_stop(self, reason: str) -> None:
        """Ask the watch to end (from any thread or a signal handler): readers stop, waiting frames are still scored."""
        self.stop_reason = reason
        self.stop.set()

    def run(self) -> list[dict]:
        """Watch until stopped, the duration is over or every stream has ended; return one summary per stream."""
        if self.settings.metrics_port is not None:
            self.metrics.serve(self.settings.metrics_port)
        metrics = None if self.metrics.port is None else f"http://127.0.0.1:{self.metrics.port}/metrics"
        self.events.emit("watch_start", streams=[t.id for t in self.targets], metrics=metrics, settings=self._settings_record())
        self._warm_up()
        started = time.monotonic()
        next_status = started + self.settings.status_every_s
        for source in self.sources:
            source.start()
        try:
            reason = self._loop(started, next_status)
        finally:
            self._readers_stop.set()
        for source in self.sources:
            source.join(_SOURCE_JOIN_S)
        self._reader_events.close()  # a reader still blocked (in an open, say) writes nothing from here on
        for health in self.health.values():
            health.finish()
        self._score(self.mailbox.take(len(self.targets), 0.0))
        summaries = [self._summary(t) for t in self.targets]
        self.metrics.close()
        self.events.finish("watch_stop", reason=reason, seconds=round(time.monotonic() - started, 3))
        return summaries

    def _warm_up(self) -> None:
        """One model call on a blank frame before the streams start, so first-call set-up does not count as latency."""
        blank = LiveFrame("warm-up", 0, 0.0, None, 0.0, 0.0, np.zeros((64, 64, 3), np.uint8))
        self.engine.score_frames([blank])

    def _loop(self, started: float, next_status: float) -> str:
        """Score waiting frames until something ends the watch; return what did."""
        duration = self.settings.duration_s
        while True:
            if self.stop.is_set():
                return self.stop_reason
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                return "duration reached"
            if all(s.finished for s in self.sources) and not len(self.mailbox):
                return "all streams ended"
            for source in self.sources:
                source.check_stall(now)
            if now >= next_status:
                self._status()
                next_status = now + self.settings.status_every_s
            self.step(min(0.25, max(0.0, next_status - now)))

    def step(self, wait_s: float) -> int:
        """Score the frames waiting now (any streams, up to a batch) in one detector call; return how many."""
        frames = self.mailbox.take(self.engine.scorer.batch.size, wait_s)
        self._score(frames)
        return len(frames)

    def _score(self, frames: list[LiveFrame]) -> None:
        """Score frames of any streams in one detector call and feed the results to their windows."""
        if not frames:
            return
        scored = self.engine.score_frames(frames)
        done = time.monotonic()
        self.model_calls += 1
        for frame, result in zip(frames, scored):
            score = math.nan if result.score is None else result.score
            latency = done - frame.arrival_mono
            health = self.health[frame.stream]
            if not math.isfinite(score):
                self._score_error(frame, score)
                continue
            health.analysed(latency, done)
            self.metrics.observe(frame.stream, latency)
            if self.settings.log_frames:
                self.events.emit(
                    "frame",
                    stream=frame.stream,
                    index=frame.index,
                    time=round(frame.time, 4),
                    pts=None if frame.pts is None else round(frame.pts, 4),
                    arrival=utc_stamp(frame.arrival),
                    score=score,
                    scored_by=result.scored_by,
                    latency_ms=round(latency * 1000, 1),
                    call=self.model_calls,
                    batch_size=len(frames),
                    **({} if result.crop is None else {"crop": result.crop}),
                )
            window = self.windows[frame.stream]
            change = window.add(frame.time, score)
            health.window(window.score, len(window), window.active)
            if change is not None:
                self._alert(frame.stream, change)

    def _score_error(self, frame: LiveFrame, score: float) -> None:
        """A NaN or infinite score is an error of its stream: counted and reported, never a verdict."""
        self.health[frame.stream].count("score_errors")
        self.events.emit(
            "stream_error",
            stream=frame.stream,
            frame=frame.index,
            error=f"{frame.stream}: the detector gave a non-finite score ({score}) for frame {frame.index} at t={frame.time:.3f} s; frame not used",
        )

    def _alert(self, stream: str, change: Transition) -> None:
        """Write an alert_raised / alert_cleared event, or window_uncertain (with `--uncertain`, alert events carry the window verdict)."""
        if change.kind == "raised":
            self.health[stream].count("alerts")
        band = self.settings.rule.uncertain
        extra = {} if band is None else {"verdict": self.windows[stream].verdict}
        if change.kind == "uncertain":
            self.events.emit(
                "window_uncertain", stream=stream, score=round(change.score, 4), low=band[0], high=band[1],
                window_start=round(change.start, 3), window_end=round(change.end, 3), frames=change.frames,
            )
            return
        self.events.emit(
            f"alert_{change.kind}",
            **extra,
            stream=stream,
            score=round(change.score, 4),
            threshold=self.settings.rule.raise_at if change.kind == "raised" else self.settings.rule.clear_at,
            window_start=round(change.start, 3),
            window_end=round(change.end, 3),
            frames=change.frames,
            flagged=change.flagged,
            segment=change.segment.to_dict() if change.segment else None,
        )

    def _status(self) -> None:
        """One status event per stream, and a compact line per stream for the operator."""
        pending = len(self.mailbox)
        for target in self.targets:
            snap = self.health[target.id].snapshot()
            self.events.emit("status", **snap, pending=pending)
            if self.on_line is not None:
                self.on_line(status_line(snap))

    def _summary(self, target: StreamTarget) -> dict:
        """The final summary event of one stream."""
        snap = self.health[target.id].snapshot()
        window = self.windows[target.id]
        fields = {k: v for k, v in snap.items() if k not in ("latency_sum_s", "window_frames", "analysed_fps")}
        fields["max_window_score"] = None if window.peak is None else round(window.peak, 4)
        fields["alert"] = window.active
        return self.events.emit("summary", **fields)

    def _settings_record(self) -> dict:
        """The settings as written in the watch_start event."""
        info = self.engine.run_info()
        rule = {k: v for k, v in asdict(self.settings.rule).items() if k != "uncertain" or v is not None}
        return {
            **asdict(self.settings.source),
            **rule,
            "status_every_s": self.settings.status_every_s,
            "duration_s": self.settings.duration_s,
            "device": info.device,
            "precision": info.precision,
            "backend": info.backend,
            "method": info.method,
            "student_precision": info.student_precision,
            "batch": self.engine.scorer.batch.size,
            "config": info.config,
            "crops": info.crops,
        }


def status_line(snap: dict) -> str:
    """A compact one-line health report of one stream, for stderr."""
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    window = "-" if snap["window_score"] is None else f"{snap['window_score']:.3f}"
    return (
        f"{snap['stream']}: {snap['state']}, {snap['analysed_fps']:.2f} fps analysed, "
        f"dropped {snap['dropped']} ({snap['drop_rate']:.0%}), reconnects {snap['reconnects']}, "
        f"latency p50 {ms(snap['latency_p50_ms'])} ms p95 {ms(snap['latency_p95_ms'])} ms, "
        f"window {window} ({snap['window_frames']} frames){', ALERT' if snap['alert'] else ''}"
    )
