"""The service's parts over one job table and spool: what the one-process server and the Ray Serve Front both run."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from .app import Service
    from .callbacks import Callbacks


@dataclass
class Opened:
    """A service over its job table and spool (interrupted jobs queued again), its runner not started yet."""

    service: "Service"
    callbacks: "Callbacks"
    recovered: list[str]
    root: Path

    def close(self) -> None:
        """Stop the runner and the callbacks, close the job table."""
        self.service.runner.close()
        self.callbacks.close()
        self.service.store.close()


def open_service(settings: Config, tokens: list[str]) -> Opened:
    """Open the job table and spool of `settings` (STREAMDET_HOME/serve unless serve.spool says) and build the service on them."""
    from ..weights import home
    from .app import Service, Waiters
    from .auth import Tokens
    from .callbacks import Callbacks
    from .metrics import Metrics
    from .runner import Runner
    from .spool import Spool
    from .store import JobStore

    cfg = settings.serve
    callbacks = Callbacks(cfg.webhooks)
    root = Path(cfg.spool) if cfg.spool else home() / "serve"
    try:
        store = JobStore(root / "jobs.sqlite3")
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"serve.spool {root}: cannot open the job database ({exc})") from None
    recovered = store.recover()
    spool = Spool(root / "uploads")
    spool.sweep(store.sources())
    waiters = Waiters()
    metrics = Metrics(store.counts)
    runner = Runner(settings, store, spool, metrics, callbacks, waiters.notify)
    return Opened(Service(settings, store, spool, runner, metrics, Tokens(tokens), waiters), callbacks, recovered, root)
