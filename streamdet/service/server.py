"""`streamdet serve`: open the job table and spool, listen, load the models, run jobs until stopped.

The port is bound first (so `/healthz` answers and a busy port is a one-line error), the models load in the
background (`/readyz` says when they are in), and jobs that a previous run left queued or running are run
again. On Ctrl-C or SIGTERM uvicorn stops taking requests; jobs still running stay `running` in the table
and are run again at the next start.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import ConfigError, StreamdetError


def serve(settings: Config, tokens_file: Path | None = None, say: Callable[[str], None] | None = None) -> None:
    """Run the service with `settings` (its `serve` section: address, folders, limits) until stopped."""
    from .auth import Tokens, load_tokens, require_tokens_off_loopback
    from .callbacks import Callbacks

    cfg = settings.serve
    tokens = load_tokens(tokens_file)  # refusals first: they need no web stack and no models
    require_tokens_off_loopback(cfg.host, tokens)
    if cfg.media_root is not None and not Path(cfg.media_root).is_dir():
        raise ConfigError(f"serve.media_root {cfg.media_root}: not a folder")
    callbacks = Callbacks(cfg.webhooks)
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"streamdet serve needs the serve extra ({exc.name} is missing): pip install 'streamdet[serve]'") from None
    from ..engine import Engine
    from ..weights import home
    from .app import Service, Waiters, create_app
    from .metrics import Metrics
    from .runner import Runner
    from .spool import Spool
    from .store import JobStore

    say = say or (lambda line: print(f"streamdet serve: {line}", file=sys.stderr, flush=True))
    root = Path(cfg.spool) if cfg.spool else home() / "serve"
    try:
        store = JobStore(root / "jobs.sqlite3")
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"serve.spool {root}: cannot open the job database ({exc})") from None
    sock = _bind(cfg.host, cfg.port)
    recovered = store.recover()
    spool = Spool(root / "uploads")
    spool.sweep(store.sources())
    waiters = Waiters()
    metrics = Metrics(store.counts)
    runner = Runner(settings, store, spool, metrics, callbacks, waiters.notify)
    service = Service(settings, store, spool, runner, metrics, Tokens(tokens), waiters)
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5))
    failure: list[StreamdetError] = []

    def load() -> None:
        try:
            engine = Engine.load(settings)
        except StreamdetError as exc:
            failure.append(exc)
            service.load_error = str(exc)
            server.should_exit = True
            return
        runner.start(engine)
        say(f"models loaded ({engine.scorer.describe()['device']}); ready")

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            say(f"listening on http://{shown}:{port} ({len(recovered)} interrupted jobs queued again; spool {root})")

    threading.Thread(target=announce, name="streamdet-serve-announce", daemon=True).start()
    threading.Thread(target=load, name="streamdet-serve-load", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        runner.close()
        callbacks.close()
        store.close()
        sock.close()
    if failure:
        raise failure[0]


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (the listening itself is uvicorn's), or a one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    return sock
