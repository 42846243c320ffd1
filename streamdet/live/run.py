"""The whole `watch` command as one call: event log, webhook, signal handling and the watch runner."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from streamdet.files import StrPath
from streamdet.live.events import EventLog
from streamdet.live.targets import StreamTarget
from streamdet.live.watch import Watch, WatchSettings
from streamdet.live.webhook import Webhook

if TYPE_CHECKING:
    from streamdet.engine import Engine


def run_watch(
    engine: "Engine",
    targets: Sequence[StreamTarget],
    settings: WatchSettings,
    events_path: StrPath | None,
    webhook_url: str | None,
    on_line: Callable[[str], None] | None,
) -> list[dict]:
    """Watch until SIGINT/SIGTERM, the duration or the end of every stream; return the summaries.

    Events go to `events_path` (appended; stdout if None), alerts are also POSTed to `webhook_url`, and
    `on_line` gets the operator's status lines.
    """
    log = EventLog.open(events_path)
    hook: Webhook | None = None
    try:
        if webhook_url is not None:
            hook = Webhook(webhook_url, on_error=lambda problem: log.emit("webhook_error", error=problem))
            log.webhook = hook
        runner = Watch(engine, targets, settings, log, on_line=on_line)
        with stop_on_signals(runner.request_stop):
            return runner.run()
    finally:
        if hook is not None:
            hook.close()
        log.close()


@contextmanager
def stop_on_signals(request_stop: Callable[[str], None]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call `request_stop("signal NAME")`; a second signal interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[str] = []

    def handler(signum: int, frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signal.Signals(signum).name)
        request_stop(f"signal {asked[0]}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
