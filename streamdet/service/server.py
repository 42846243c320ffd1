"""`streamdet serve`: open the job table and spool, listen, load the models, run jobs until stopped.

The port is bound first (so `/healthz` answers and a busy port is a one-line error), the models load in the
background (`/readyz` says when they are in), and jobs that a previous run left queued or running are run
again. On Ctrl-C or SIGTERM uvicorn stops taking requests; jobs still running stay `running` in the table
and are run again at the next start.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import ConfigError, StreamdetError
from .assemble import open_service


RAY_HINT = "streamdet serve --ray needs Ray Serve: pip install 'streamdet[serve-ray]' (or pip install 'ray[serve]>=2.10,<2.64')"


def serve(settings: Config, tokens_file: Path | None = None, say: Callable[[str], None] | None = None) -> None:
    """Run the service with `settings` (its `serve` section: address, folders, limits) until stopped; on the
    Ray cluster that `serve.ray` names, as a Ray Serve application, where it is set."""
    tokens = checked_tokens(settings, tokens_file)  # refusals first: they need no web stack and no models
    require_web_stack()
    if settings.serve.ray is not None:
        serve_on_ray(settings, tokens, say)
        return
    import uvicorn

    from ..engine import Engine
    from .app import create_app

    say = say or announcer()
    sock = _bind(settings.serve.host, settings.serve.port)  # before the table's running jobs are queued again: a busy port may be this spool's server
    try:
        opened = open_service(settings, tokens)
    except BaseException:
        sock.close()
        raise
    service = opened.service
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
        service.runner.start(engine)
        say(f"models loaded ({engine.scorer.describe()['device']}); ready")

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            say(f"listening on http://{shown}:{port} ({len(opened.recovered)} interrupted jobs queued again; spool {opened.root})")

    threading.Thread(target=announce, name="streamdet-serve-announce", daemon=True).start()
    threading.Thread(target=load, name="streamdet-serve-load", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        opened.close()
        sock.close()
    if failure:
        raise failure[0]


def serve_on_ray(settings: Config, tokens: list[str], say: Callable[[str], None] | None = None) -> None:
    """Deploy the service on the Ray cluster at `serve.ray` (a local one for `local`, or `auto` without one) as
    Ray Serve's `streamdet` application, and keep it up until Ctrl-C or SIGTERM; then remove it."""
    try:
        import ray
        from ray import serve as ray_serve
    except ImportError:
        raise ConfigError(RAY_HINT) from None
    from ..cluster.job import connect, resolved_checkpoints
    from .rayserve import APP_NAME, application, free_port

    cfg = settings.serve
    say = say or announcer()
    weights = {key: str(path.resolve()) for key, path in resolved_checkpoints(settings).items()}  # missing weights: one line before Ray
    port = cfg.port or free_port(cfg.host)
    verbose = logging.getLogger("streamdet").isEnabledFor(logging.INFO)
    started = connect(ray, cfg.ray, settings.cluster.num_cpus, flag="--ray", log_to_driver=verbose)  # replicas log to Ray's files
    deployed = False
    try:
        gpus_there = ray.cluster_resources().get("GPU", 0)
        gpus = 1.0 if gpus_there > 0 and settings.device != "cpu" else 0.0
        replicas = cfg.ray_replicas or (max(1, int(gpus_there)) if gpus else 1)
        logs = {"log_level": "INFO" if verbose else "WARNING", "enable_access_log": verbose}
        ray_serve.start(http_options={"host": cfg.host, "port": port}, logging_config=logs)
        if not verbose:
            logging.getLogger("ray.serve").setLevel(logging.ERROR)  # Serve set its driver-side logger up just now
        try:
            ray_serve.run(application(settings, tokens, weights, gpus, replicas), name=APP_NAME, route_prefix="/", logging_config=logs)
        except Exception as exc:  # a replica that cannot start: Ray's message, first line
            raise StreamdetError(f"--ray {cfg.ray}: the Ray Serve application did not start ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
        deployed = True
        shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        say(f"listening on http://{shown}:{port} (Ray Serve at {cfg.ray}: 1 to {replicas} scoring replicas, {gpus:g} GPU each; job table and spool on the head node)")
        _wait_for_stop()
    finally:
        if started:  # the whole local instance goes: jobs cut short stay `running` and run again at the next start, as after a crash
            ray.shutdown()
        elif deployed:
            ray_serve.delete(APP_NAME)


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def announcer() -> Callable[[str], None]:
    """Print a line as `streamdet serve: LINE` on stderr."""
    return lambda line: print(f"streamdet serve: {line}", file=sys.stderr, flush=True)


def checked_tokens(settings: Config, tokens_file: Path | None) -> list[str]:
    """The API tokens, after the refusals that need no web stack: tokens off loopback, a media root that is no folder."""
    from .auth import load_tokens, require_tokens_off_loopback

    cfg = settings.serve
    tokens = load_tokens(tokens_file)
    require_tokens_off_loopback(cfg.host, tokens)
    if cfg.media_root is not None and not Path(cfg.media_root).is_dir():
        raise ConfigError(f"serve.media_root {cfg.media_root}: not a folder")
    return tokens


def require_web_stack() -> None:
    """A one-line error naming the extra where FastAPI, python-multipart or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"streamdet serve needs the serve extra ({exc.name} is missing): pip install 'streamdet[serve]'") from None


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
