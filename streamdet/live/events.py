"""Watch events as JSON lines: one object per line, flushed at once, to stdout or appended to a file.

Every event has `ts` (UTC, ISO 8601 with milliseconds) and `event`; stream events also have `stream`.
Alert events are handed to the webhook sender as well, when there is one.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Callable, TextIO

from streamdet.errors import ConfigError
from streamdet.files import StrPath
from streamdet.live.webhook import Webhook

ALERT_EVENTS = ("alert_raised", "alert_cleared")


def utc_stamp(unix_time: float | None = None) -> str:
    """A Unix time (default: now) as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    moment = datetime.now(timezone.utc) if unix_time is None else datetime.fromtimestamp(unix_time, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Thread-safe JSON-lines writer; after `finish` or `close` further events are ignored."""

    def __init__(self, out: TextIO, webhook: Webhook | None = None, owns_out: bool = False) -> None:
        self._out = out
        self._owns_out = owns_out
        self.webhook = webhook
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: StrPath | None, webhook: Webhook | None = None) -> "EventLog":
        """Events to stdout, or appended to `path` (created if missing)."""
        if path is None:
            return cls(sys.stdout, webhook)
        try:
            out = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot open for appending events ({exc.strerror or exc})") from None
        return cls(out, webhook, owns_out=True)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one event line now; return the event as written."""
        record = {"ts": utc_stamp(), "event": event, **fields}
        line = json.dumps(record, separators=(",", ":"), allow_nan=False, default=str) + "\n"
        with self._lock:
            if self._closed:
                return record
            self._out.write(line)
            self._out.flush()
        if self.webhook is not None and event in ALERT_EVENTS:
            self.webhook.send(record)
        return record

    def finish(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write the last event: first let the webhook deliver (its errors are still written), then refuse any more."""
        if self.webhook is not None:
            self.webhook.close()
        record = self.emit(event, **fields)
        with self._lock:
            self._closed = True
        return record

    def close(self) -> None:
        """Stop writing; close the file if this log opened it."""
        with self._lock:
            self._closed = True
            if self._owns_out:
                self._out.close()


class Gate:
    """Passes events to `emit` until `close`; after it, drops them (reader threads that outlive the watch).

    The check and the write happen under one lock, so once `close` returns no event can slip through.
    """

    def __init__(self, emit: Callable[..., Any]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._open = True

    def __call__(self, event: str, **fields: Any) -> None:
        with self._lock:
            if self._open:
                self._emit(event, **fields)

    def close(self) -> None:
        """Drop every later event."""
        with self._lock:
            self._open = False
