"""`streamdet serve`: the HTTP service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .batch import quiet_ray
from .common import ADM, CONFIG, DEVICE, PRECISION, STUDENT, model_options, settings_from, user_errors

if TYPE_CHECKING:
    pass


def serve_command(
    config: Optional[str] = CONFIG,
    host: Optional[str] = typer.Option(None, help="Address to listen on (default 127.0.0.1; any other needs --tokens)."),
    port: Optional[int] = typer.Option(None, min=0, max=65535, help="Port (default 8000; 0 picks a free one)."),
    tokens: Optional[Path] = typer.Option(None, "--tokens", help="File of API tokens, one per line (else STREAMDET_TOKENS)."),
    adm: Optional[str] = ADM,
    student: Optional[str] = STUDENT,
    device: Optional[str] = DEVICE,
    precision: Optional[str] = PRECISION,
    batch: Optional[int] = typer.Option(None, min=1, help="Most frames per model call (frames of all jobs share calls)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run as a Ray Serve app on this Ray cluster (HOST:PORT, ray://HOST:PORT, auto, or local for one started here): one scoring replica per GPU."),
    replicas: Optional[int] = typer.Option(None, "--replicas", min=1, help="With --ray: most scoring replicas (default: one per GPU of the cluster, else 1)."),
) -> None:
    """Serve scans over HTTP (needs the serve extra): POST /v1/scans, poll, read the result and report; a page at /. See docs/serve.md."""
    from ..service import serve

    with user_errors():
        settings = settings_from(config, {
            **model_options(adm, student, device, precision, batch), "serve.host": ("--host", host), "serve.port": ("--port", port),
            "serve.ray": ("--ray", ray), "serve.ray_replicas": ("--replicas", replicas),
        })
        if settings.serve.ray is not None and not logging.getLogger("streamdet").isEnabledFor(logging.INFO):
            quiet_ray()
        serve(settings, tokens)
