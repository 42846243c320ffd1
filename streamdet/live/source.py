"""One reader thread per live stream: open, decode, pick frames at the analysis rate, reconnect forever.

The reader never gives up on a network stream or a capture device: a failed open, a dropped connection,
or a stream that gives no frame for `timeout_s` (FFmpeg socket options and PyAV's open/read timeouts, and
`check_stall`, called by the watch loop, which reports a stall on time while FFmpeg's read still waits)
ends the connection, and the reader tries again after a pause whose ceiling
doubles (1, 2, 4, … seconds, up to `max_backoff_s`) and which is drawn at random from the ceiling's upper
half (jitter). A stream is up only once it has delivered a decoded frame: a connection that never does is
a `stream_error`. Corrupt packets are skipped. A local file (played at its own speed) ends at its end, and so
does a network input of known length (an HLS VOD playlist, with #EXT-X-ENDLIST; a file served over HTTP),
which is also played at its own speed, as a player would. An address FFmpeg rejects as malformed (an invalid
argument, an unknown protocol) is one `stream_error`, not retried. Nothing here raises: every problem becomes an event.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

import av

from streamdet.errors import MediaError
from streamdet.live.clock import RateSampler, StreamClock
from streamdet.live.mailbox import LatestFrames, LiveFrame
from streamdet.live.metrics import StreamHealth
from streamdet.live.targets import StreamTarget, open_options
from streamdet.video.colour import to_rgb

Emit = Callable[..., Any]


@dataclass(frozen=True)
class SourceSettings:
    """How readers open and sample their streams."""

    fps: float = 2.0
    realtime: bool = False
    rtsp_transport: str = "tcp"
    timeout_s: float = 10.0
    max_backoff_s: float = 60.0
    first_backoff_s: float = 1.0


def backoff_delay(attempt: int, first_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait before reconnection attempt `attempt` (1, 2, …), with "equal jitter".

    The ceiling doubles from `first_s` and is capped at `max_s`; the delay is drawn uniformly from the upper
    half of it, so cameras that dropped together do not all reconnect in the same instant, yet none retries
    sooner than half the ceiling.
    """
    ceiling = min(max_s, first_s * 2 ** min(attempt - 1, 30))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


class LiveSource:
    """Reads one stream in a daemon thread and offers its sampled frames to the shared mailbox."""

    def __init__(
        self,
        target: StreamTarget,
        settings: SourceSettings,
        mailbox: LatestFrames,
        health: StreamHealth,
        emit: Emit,
        stop: threading.Event,
    ) -> None:
        self.target = target
        self.settings = settings
        self.mailbox = mailbox
        self.health = health
        self.emit = emit
        self.stop = stop
        self._clock = StreamClock()
        self._sampler = RateSampler(settings.fps)
        self._index = 0
        self._jitter = random.Random()
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._done = False  # nothing more to read: a finite input played to its end, or an address that cannot work
        self._thread = threading.Thread(target=self._run, name=f"streamdet-live-{target.id}", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` s for the reader to stop (a read blocked in FFmpeg ends at its timeout)."""
        self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        """True once the reader has stopped for good (a file ended, or stop was asked)."""
        return not self._thread.is_alive()

    def _run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            delivered = self._connect_once(attempt)
            if self.target.kind == "file" or self._done or self.stop.is_set():
                break
            attempt = 1 if delivered else attempt + 1
            delay = round(backoff_delay(attempt, self.settings.first_backoff_s, self.settings.max_backoff_s, self._jitter), 3)
            self.health.set_state("reconnecting")
            self.health.count("reconnects")
            self.emit("stream_reconnecting", stream=self.target.id, attempt=attempt, delay_s=delay)
            self.stop.wait(delay)
        self.health.set_state("ended")

    def _connect_once(self, attempt: int) -> bool:
        """One connection: open, read until it ends; report it. True if any frame was decoded."""
        started = time.monotonic()
        try:
            container = self._open()
        except (av.FFmpegError, OSError) as exc:
            self.health.set_state("down")
            problem = self._describe(exc, time.monotonic() - started)
            if isinstance(exc, (av.error.ArgumentError, av.error.ProtocolNotFoundError)):
                self._done = True
                problem += " (not retried: FFmpeg cannot open this address)"
            self.emit("stream_error", stream=self.target.id, attempt=attempt, error=f"{self.target.id}: {problem}")
            return False
        except MediaError as exc:
            self.health.set_state("down")
            self.emit("stream_error", stream=self.target.id, attempt=attempt, error=f"{self.target.id}: {exc}")
            return False
        except Exception as exc:  # an FFmpeg or PyAV surprise must not end the monitoring of this stream
            self.health.set_state("down")
            self.emit("stream_error", stream=self.target.id, attempt=attempt, error=f"{self.target.id}: cannot open ({type(exc).__name__}: {exc})")
            return False
        connection = _Connection(attempt, time.monotonic(), finite=self.target.kind == "network" and container.duration is not None)
        with self._lock:
            self._connection = connection
        try:
            stream = container.streams.video[0]
            self._clock.reconnected()
            reason, stalled = self._read(container, stream, connection)
        except Exception as exc:  # a decoder surprise ends this connection only; the stream is retried
            reason, stalled = f"unexpected error while reading ({type(exc).__name__}: {exc})", False
        finally:
            container.close()
        if not self.stop.is_set():
            self._report_end(connection, reason, stalled)
        return connection.frames > 0

    def check_stall(self, now_mono: float) -> None:
        """Report a live connection that has given no frame for `timeout_s` at once, though FFmpeg's read is
        still blocked (the HLS demuxer, for one, takes about twice the timeout to give up on a frozen playlist)."""
        connection = self._connection
        if self.target.kind == "file" or connection is None or self.stop.is_set():
            return
        if now_mono - connection.last_frame >= self.settings.timeout_s:
            self._report_end(connection, "", stalled=True)

    def _report_end(self, connection: "_Connection", reason: str, stalled: bool) -> None:
        """Say once how a connection ended (the reader and the stall check may both find out): `stream_down`,
        `stream_end` for a file, or `stream_error` if it never delivered a frame."""
        stream, timeout = self.target.id, self.settings.timeout_s
        with self._lock:
            if connection.reported:
                return
            connection.reported = True
            if connection.frames == 0:
                self.health.set_state("down")
                if self.target.kind == "file":
                    problem = f"no decodable video ({reason})"
                else:
                    problem = f"connected but no video within {timeout:g} s" if stalled else f"connected but no video ({reason})"
                self.emit("stream_error", stream=stream, attempt=connection.attempt, error=f"{stream}: {problem}")
            elif self.target.kind == "file" or connection.ended:
                self.emit("stream_end", stream=stream, reason=reason, frames=connection.frames)
            else:
                self.health.set_state("down")
                problem = f"no data for {timeout:g} s (stalled)" if stalled else reason
                self.emit("stream_down", stream=stream, reason=f"{stream}: {problem}", frames=connection.frames)

    def _report_up(self, connection: "_Connection", stream: av.video.stream.VideoStream, frame: av.VideoFrame) -> bool:
        """Write `stream_up` for the connection's first decoded frame; False if the connection was already reported ended."""
        with self._lock:
            if connection.reported:
                return False
            self.health.set_state("up")
            rate = stream.average_rate or stream.guessed_rate
            self.emit(
                "stream_up",
                stream=self.target.id,
                attempt=connection.attempt,
                codec=stream.codec_context.name,
                width=frame.width,
                height=frame.height,
                fps=float(rate) if rate else None,
            )
            return True

    def _open(self) -> av.container.InputContainer:
        """Open the input with the live options; a container without video is a `MediaError`."""
        settings = self.settings
        options = open_options(self.target, settings.rtsp_transport, settings.timeout_s)
        container = av.open(
            self.target.url,
            mode="r",
            format="v4l2" if self.target.kind == "device" else None,
            container_options=options,
            timeout=None if self.target.kind == "file" else (settings.timeout_s, settings.timeout_s),
            metadata_errors="ignore",
        )
        if not container.streams.video:
            container.close()
            raise MediaError("no video stream")
        return container

    def _read(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream, connection: "_Connection") -> tuple[str, bool]:
        """Decode until the stream ends, fails, stalls or stop is asked; return why it ended and whether it stalled."""
        time_base = stream.time_base
        # Live inputs without timestamps (MJPEG over HTTP) get made-up ones at a guessed rate: use arrival times.
        if self.target.kind != "file" and container.format.flags & av.format.Flags.no_timestamps.value:
            time_base = None
        pace_origin: float | None = None
        packets = container.demux(stream)
        last_data = time.monotonic()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                packet = next(packets)
            except StopIteration:
                if self.target.kind == "file":
                    return "end of stream", False
                if connection.finite:
                    connection.ended = self._done = True
                    return "end of stream", False
                if time.monotonic() - last_data >= 0.95 * self.settings.timeout_s:
                    return "", True  # FFmpeg's read timed out waiting for data and calls it the end (HLS)
                return "end of stream (the server closed it)", False
            except (av.FFmpegError, OSError) as exc:
                if self._timed_out(exc, time.monotonic() - started):
                    return "", True
                return self._describe(exc, time.monotonic() - started), False
            if packet.size:
                last_data = time.monotonic()  # not the empty packet PyAV hands out at the end to flush the decoder
            try:
                frames = stream.decode(packet)
            except av.FFmpegError:
                self.health.count("corrupt")
                continue
            for frame in frames:
                arrival_mono = time.monotonic()
                if connection.frames == 0 and not self._report_up(connection, stream, frame):
                    return "stalled", True
                if connection.reported:
                    return "stalled", True  # reported down by the stall check meanwhile: reconnect
                connection.frames += 1
                connection.last_frame = arrival_mono
                pts = float(frame.pts * time_base) if frame.pts is not None and time_base is not None else None
                now = self._clock.time(pts, arrival_mono)
                self._index += 1
                self.health.count("received")
                if not self._sampler.due(now):
                    continue
                if self.settings.realtime or connection.finite:
                    pace_origin = arrival_mono - now if pace_origin is None else pace_origin
                    if self.stop.wait(max(0.0, pace_origin + now - time.monotonic())):
                        return "stopped", False
                    arrival_mono = time.monotonic()
                    connection.last_frame = arrival_mono
                self._offer(frame, self._index - 1, now, pts, arrival_mono)
        return "stopped", False

    def _offer(self, frame: av.VideoFrame, index: int, now: float, pts: float | None, arrival_mono: float) -> None:
        """Convert a picked frame to RGB and make it the stream's waiting frame."""
        try:
            image = to_rgb(frame)
        except (av.FFmpegError, ValueError):
            self.health.count("corrupt")
            return
        arrival = time.time() - (time.monotonic() - arrival_mono)
        self.health.count("sampled")
        live = LiveFrame(self.target.id, index, now, pts, arrival, arrival_mono, image)
        if self.mailbox.offer(live) is not None:
            self.health.count("dropped")

    def _timed_out(self, exc: BaseException, elapsed: float) -> bool:
        """True if FFmpeg gave up waiting (PyAV's timeout, or a socket timeout of a network input)."""
        return isinstance(exc, av.ExitError) or (self.target.kind == "network" and elapsed >= 0.95 * self.settings.timeout_s)

    def _describe(self, exc: BaseException, elapsed: float) -> str:
        """What went wrong, in a few words (the caller prefixes the stream id)."""
        if self._timed_out(exc, elapsed):
            return f"no answer within {self.settings.timeout_s:g} s (timed out)"
        if isinstance(exc, FileNotFoundError):
            return "no such device or file"
        if getattr(exc, "errno", None) == errno.EIO and self.target.kind == "network":
            return _unresolved(self.target.url) or "input/output error"
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return text[0].lower() + text[1:]


@dataclass
class _Connection:
    """One open connection of a reader: its attempt number, when the last frame came, frames decoded, whether its end
    was reported, whether the input has a known length (`finite`) and was read to that end (`ended`)."""

    attempt: int
    last_frame: float
    frames: int = 0
    reported: bool = False
    finite: bool = False
    ended: bool = False


def _unresolved(url: str) -> str | None:
    """'cannot resolve host X' when the URL's host name does not resolve (FFmpeg says only 'Input/output error')."""
    host = urlsplit(url).hostname
    if not host:
        return None
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return f"cannot resolve host {host}"
    return None
