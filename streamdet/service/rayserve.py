"""`streamdet serve --ray ADDRESS`: the same FastAPI app as a Ray Serve application, its scoring in autoscaled replicas.

Two deployments. `Front`, one replica on the head node, serves the app of `create_app` over the job table and
spool on the head's disk, with the service's one runner: it decodes the jobs there and keeps the /v1 semantics
(queue limits, restarts, retention) of the one-process server. `Scoring`, between one replica and one per GPU
(Ray Serve autoscales on the frames waiting), loads the engine once per replica. Every frame is one request to
`Scoring`; `@serve.batch` gathers the frames of all jobs into model calls of at most the config's batch, each
`engine.scoring.send(...).collect()` as `scan` runs it, so a file gets `scan`'s scores and verdict.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np
import torch
from ray import serve

from ..cluster.stages import load_on_node
from ..crops import FaceFinder
from ..engine import Engine
from ..engine.scoring import send
from ..results import FrameScore
from .app import create_app
from .assemble import Opened, open_service

if TYPE_CHECKING:
    from ..config import Config
    from ..crops import Box

APP_NAME = "streamdet"
FRONT_REQUESTS = 1000  # HTTP requests one Front replica holds at once: uploads, long polls, page loads of every client


class Sent(NamedTuple):
    """What a scoring replica reads of a frame: its pixels (uint8 RGB), index and time."""

    image: Any
    index: int
    time: float


class _Batch(NamedTuple):
    size: int


class RemoteScorer:
    """What the Front's runner reads of a scorer: batch size, device (frames are decoded to RGB on the CPU), the
    face finder for crop layouts, and the replicas' own description; `handle` reaches the replicas."""

    def __init__(self, handle: Any, about: dict[str, Any], batch: int, depth: int) -> None:
        self.handle = handle
        self.about = about
        self.batch = _Batch(batch)
        self.depth = depth
        self.device = torch.device("cpu")
        self.faces = FaceFinder()
        self.methods = tuple(about.get("methods") or ())

    def describe(self) -> dict[str, Any]:
        """The scoring replicas' device, precision, backend and methods (as one of them reported at start)."""
        return dict(self.about)


class RemoteCall:
    """Frames sent to the scoring replicas, one request each, not yet read back."""

    def __init__(self, frames: list[Any], responses: list[Any]) -> None:
        self.frames = frames
        self.responses = responses

    def collect(self) -> list[FrameScore]:
        """Each frame's score, in order (the first failed request's error is raised)."""
        return [response.result() for response in self.responses]


class RemoteEngine(Engine):
    """An engine whose model calls go to the `Scoring` deployment; verdicts and run info are the base engine's."""

    scorer: RemoteScorer

    @property
    def depth(self) -> int:  # type: ignore[override]
        """Batches kept in flight: enough for every replica to have one computing and one waiting."""
        return self.scorer.depth

    def send(self, frames: Sequence[Any], layouts: Sequence[tuple[str, list["Box"]]] | None = None) -> RemoteCall:  # type: ignore[override]
        """One request per frame, with its crop mode and layout; Ray Serve batches them in the replicas."""
        score = self.scorer.handle.score
        mode = self.settings.crops
        responses = [
            score.remote((Sent(frame.image, frame.index, frame.time), mode, layouts[i] if layouts else None))
            for i, frame in enumerate(frames)
        ]
        return RemoteCall(list(frames), responses)


class Scoring:
    """A scoring replica: the run's engine on this node's device, fed batches of frames from all jobs."""

    def __init__(self, settings: "Config", weights: dict[str, str]) -> None:
        self.engine = load_on_node(settings, weights)
        self.score.set_max_batch_size(settings.batch)
        self.score.set_batch_wait_timeout_s(settings.serve.ray_batch_wait_s)

    def describe(self) -> dict[str, Any]:
        """The replica's scorer: device, precision, backend, methods."""
        return self.engine.scorer.describe()

    @serve.batch
    async def score(self, items: list[tuple[Sent, str, Any]]) -> list[FrameScore]:
        """The scores of frames from concurrent requests, one model call per crop mode among them."""
        return await asyncio.to_thread(self._score_all, items)

    def _score_all(self, items: list[tuple[Sent, str, Any]]) -> list[FrameScore]:
        by_mode: dict[str, list[int]] = {}
        for i, (_, mode, _) in enumerate(items):
            by_mode.setdefault(mode, []).append(i)
        out: list[Any] = [None] * len(items)
        for mode, chosen in by_mode.items():
            layouts = None if mode == "center" else [items[i][2] for i in chosen]
            frames = [items[i][0]._replace(image=np.require(items[i][0].image, requirements="W")) for i in chosen]  # Ray hands arrays over read-only
            for i, scored in zip(chosen, send(self.engine.scorer, frames, mode, layouts).collect()):
                out[i] = scored
        return out


_BUILT: list[Any] = []  # the app a Front replica has just built, for the ingress builder Serve calls next in that process


def _front_app() -> Any:
    """The ASGI app of the Front replica being initialised (Ray Serve calls this right after `Front.__init__`)."""
    return _BUILT.pop()


class Front:
    """The Front replica: the service over the head's job table and spool, its runner scoring through `Scoring`."""

    def __init__(self, settings: "Config", tokens: list[str], scoring: Any, depth: int) -> None:
        self.opened: Opened = open_service(settings, tokens)
        _BUILT.append(create_app(self.opened.service))
        threading.Thread(target=self._start, args=(settings, scoring, depth), name="streamdet-serve-load", daemon=True).start()

    def _start(self, settings: "Config", scoring: Any, depth: int) -> None:
        """Ask a scoring replica what it runs, then start the runner (until then /readyz says loading)."""
        service = self.opened.service
        try:
            about = scoring.describe.remote().result()
        except Exception as exc:  # reported by /readyz; the replicas' own logs say more
            service.load_error = f"the scoring replicas cannot start: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            return
        service.runner.start(RemoteEngine(RemoteScorer(scoring, about, settings.batch, depth), settings))

    def __del__(self) -> None:
        opened = getattr(self, "opened", None)
        if opened is not None:
            opened.close()


def application(settings: "Config", tokens: list[str], weights: dict[str, str], gpus: float, replicas: int) -> Any:
    """The Serve application: Front (on the head node) bound to Scoring (`gpus` each, one to `replicas` of them)."""
    scoring = serve.deployment(
        Scoring, name="Scoring", ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
        max_ongoing_requests=2 * settings.batch,
        autoscaling_config={"min_replicas": 1, "initial_replicas": replicas, "max_replicas": replicas, "target_ongoing_requests": settings.batch},
    )
    front = serve.deployment(
        serve.ingress(_front_app)(Front), name="Front", num_replicas=1, max_ongoing_requests=FRONT_REQUESTS,
        ray_actor_options={"num_cpus": 0, "resources": {"node:__internal_head__": 0.001}},
    )
    return front.bind(settings, tokens, scoring.bind(settings, weights), 2 * replicas)


def free_port(host: str) -> int:
    """A port free on `host` now (for `--port 0`: Ray Serve's proxy needs a number)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
