"""POST alert events to a webhook from a background thread, so a slow or dead receiver never blocks analysis.

Events wait in a bounded queue; when it is full the oldest waiting event is dropped (and counted). Each
event is POSTed as JSON with a timeout, and retried with a doubling pause on network errors and 5xx/429
answers; other 4xx answers are not retried. Failures are reported through `on_error`, never raised.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from streamdet.errors import ConfigError

_STOP = object()


class Webhook:
    """A sender thread with a bounded queue: `send` never blocks, `close` gives pending events a little time."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        queue_size: int = 100,
        on_error: Callable[[str], None] | None = None,
        sign: Callable[[bytes], Mapping[str, str]] | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ConfigError(f"--webhook {url}: not an http:// or https:// URL")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_error = on_error
        self.sign = sign  # extra headers for a body (a signature), where the receiver checks one
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamdet-webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        """Queue an event for POSTing; if the queue is full, drop the oldest waiting one."""
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    continue

    def close(self, wait_s: float = 5.0) -> None:
        """Let the thread deliver what is queued for up to `wait_s` seconds, then stop retrying (again: no-op)."""
        if self._closing.is_set():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=wait_s)
        self._thread.join(wait_s)
        self._closing.set()
        self._thread.join(self.timeout_s)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, default=str).encode()
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt and self._closing.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
            problem, retry = self._post(body)
            if not problem:
                self.sent += 1
                return
            if not retry:
                break
        self.failed += 1
        if self.on_error is not None:
            self.on_error(f"{self.url}: {event.get('event')} not delivered ({problem})")

    def _post(self, body: bytes) -> tuple[str, bool]:
        """One POST: ("", _) on success, else (the problem, whether retrying may help)."""
        headers = {"Content-Type": "application/json", **(self.sign(body) if self.sign is not None else {})}
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
            return "", False
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} {exc.reason}", exc.code >= 500 or exc.code == 429
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return str(getattr(reason, "strerror", None) or reason), True
