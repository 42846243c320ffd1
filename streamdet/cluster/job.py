"""The driver of a cluster scan: resolve weights once, skip finished inputs, run Ray Data rounds, assemble and write rows.

Ray Data streams inputs through CPU decode tasks and detector actors; the driver receives frame scores as they
are ready, gives each complete file its verdict with the local scan's rule (`pipeline.conclude`) and writes rows
to part files as it goes, so a cluster that dies loses only the work in flight. Inputs whose tasks failed are run
again (each on its own) up to `retries` times, then recorded as errors.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..aggregate import VerdictRule, conclude
from ..config import Config
from ..crops import FaceFinder
from ..errors import StreamdetError
from ..provenance import Provenance, load_anchors
from ..results import FileResult, FrameScore
from ..weights import file_sha256, resolve
from .inputs import Pending, pending_inputs
from .parts import PartWriter, check_settings, read_rows
from .stages import FRAME, ScoreFrames, decode_inputs

log = logging.getLogger("streamdet")
INSTALL_HINT = "streamdet batch needs Ray: pip install 'streamdet[ray]' (or pip install 'ray[data]>=2.9')"
MAX_BLOCKS = 10_000  # inputs per first round beyond this share decode tasks; a crash reruns the others on their own


@dataclass(frozen=True)
class Progress:
    """Where a cluster scan stands: inputs done of total, errors, frames scored, seconds since it started."""

    done: int
    total: int
    errors: int
    frames: int
    elapsed: float

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before the first input is done)."""
        return self.elapsed / self.done * (self.total - self.done) if self.done else None


@dataclass
class BatchSummary:
    """What a cluster scan did: the rows of all its inputs (this run's and earlier ones'), and this run's counts."""

    rows: list[dict[str, Any]]
    skipped: int
    scanned: int
    frames: int
    elapsed: float
    parts: int = 0
    results: list[FileResult] = field(default_factory=list)


def require_ray() -> Any:
    """The `ray` module, or a one-line error saying what to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (the extra installs both)
    except ImportError:
        raise StreamdetError(INSTALL_HINT) from None
    return ray


def connect(ray: Any, given: str, num_cpus: int | None = None, flag: str = "--cluster", log_to_driver: bool = True) -> bool:
    """Join the cluster asked for (auto: RAY_ADDRESS or a running local one, else a new local one of `num_cpus`);
    True if started here. Errors are one line naming `flag` and the address `given`; `log_to_driver` False keeps
    the workers' output in Ray's log files."""
    address = {"auto": None, "local": "local"}.get(given, given)
    local = address in (None, "local")
    if not local:
        _check_reachable(given, flag)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, num_cpus=num_cpus if local else None, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=log_to_driver)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "auth" in str(exc).lower() or "token" in str(exc).lower():
            raise StreamdetError(
                f"{flag} {given}: the Ray cluster refused this client's authentication token; give the head's token "
                "(RAY_AUTH_TOKEN, or the head's ~/.ray/auth_token on this machine)"
            ) from None
        raise StreamdetError(f"{flag} {given}: cannot connect to Ray ({first})") from None
    return True


def _check_reachable(address: str, flag: str, timeout_s: float = 5.0) -> None:
    """A one-line error within seconds where a `host:port` (or ray://host:port) address does not answer, rather
    than Ray's own minutes of connection retries."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise StreamdetError(f"{flag} {address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise StreamdetError(f"{flag} {address}: no Ray head answers there ({exc.strerror or exc})") from None


def _ship(ray: Any, path: Path, digest: str) -> tuple[str, Any]:
    """A checkpoint as actors fetch it from the object store: a file name (by digest) and the bytes' reference."""
    return f"{digest[:16]}-{path.name}", ray.put(path.read_bytes())


class _Assembly:
    """Collects frame scores per file and concludes each file with the engine's rule once its `done` row and all its frames are in."""

    def __init__(self, inputs: dict[str, Pending], rule: VerdictRule, emit: Callable[[FileResult], None]) -> None:
        self.inputs = inputs
        self.rule = rule
        self.emit = emit
        self.files: dict[str, dict[str, Any]] = {}
        self.done_paths: set[str] = set()
        self.frames = 0

    def add(self, batch: dict[str, np.ndarray]) -> None:
        for i, path in enumerate(batch["path"]):
            path = str(path)
            state = self.files.setdefault(path, {"frames": [], "model_s": 0.0, "done": None})
            if batch["row"][i] == FRAME:
                state["frames"].append(FrameScore.from_dict(json.loads(batch["scored"][i])))
                state["model_s"] += float(batch["model_s"][i])
                self.frames += 1
            else:
                state["done"] = {name: batch[name][i] for name in ("frames", "decode_s", "error", "warning", "provenance")}
            done = state["done"]
            if done is not None and len(state["frames"]) == int(done["frames"]):
                self.done_paths.add(path)
                self.emit(self._conclude(path, self.files.pop(path)))

    def _conclude(self, path: str, state: dict[str, Any]) -> FileResult:
        done = state["done"]
        result = FileResult(path, self.inputs[path].kind, frames=state["frames"])
        decode_s, model_s = float(done["decode_s"]), state["model_s"]
        result.timings = {"decode_s": round(decode_s, 4), "model_s": round(model_s, 4), "total_s": round(decode_s + model_s, 4)}
        if done["provenance"]:
            result.provenance = Provenance.from_dict(json.loads(str(done["provenance"])))
        return conclude(result, str(done["error"]) or None, str(done["warning"]) or None, self.rule)


def _round(ray: Any, todo: list[Pending], blocks: int, config: Config, weights: dict[str, Any], assembly: _Assembly) -> None:
    """One Ray Data pass over `todo`; results reach `assembly` as they are ready."""
    settings = config.cluster
    gpus = settings.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 and config.device != "cpu" else 0.0
    workers = settings.actors or (max(1, int(ray.cluster_resources().get("GPU", 0) // gpus)) if gpus else 1)
    actor_cpus = actor_cpu_share(ray.cluster_resources().get("CPU", 0.0), workers, settings.cpus_per_actor)
    ds = ray.data.from_items([{"path": item.path} for item in todo], override_num_blocks=blocks)
    if config.trust_anchors:
        load_anchors(config.trust_anchors)  # a bad anchors file is one line here, not an error in every decode task
    with warnings.catch_warnings():  # bounded retries have no named parameter yet; Ray's default is to retry forever
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(decode_inputs, fn_kwargs={"config": config}, batch_size=1, batch_format="numpy", num_cpus=1, max_retries=settings.retries)
        ds = ds.map_batches(
            ScoreFrames, fn_constructor_args=(config, weights), batch_size=config.batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=gpus, num_cpus=actor_cpus,
            max_restarts=-1, max_task_retries=settings.retries,
        )
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        assembly.add(batch)


def actor_cpu_share(cluster_cpus: float, actors: int, per_actor: float) -> float:
    """CPUs each detector actor asks for: `per_actor`, lowered where the actors would leave no whole CPU for a
    decode task (one CPU each), which would stall the scan: one-CPU machines, `--cpus-per-actor 0.5` on one CPU."""
    if cluster_cpus - actors * per_actor >= 1.0:
        return per_actor
    share = max(0.0, (cluster_cpus - 1.0) / actors)
    log.warning("%g CPUs: the detector actors get %g CPU each (not %g) so that decoding can run beside them", cluster_cpus, share, per_actor)
    return share


def _fatal(exc: BaseException) -> StreamdetError | None:
    """An error no retry can fix: streamdet's own (bad weights on a node, say) or a detector actor that cannot start."""
    while exc is not None:
        if isinstance(exc, StreamdetError):
            return StreamdetError(str(exc))
        if getattr(exc, "actor_init_failed", False):
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            own = [line.split(": ", 1)[1] for line in lines if line.startswith("streamdet.errors.") and ": " in line]
            return StreamdetError(own[-1] if own else f"the detector actors cannot start: {lines[-1] if lines else type(exc).__name__}")
        exc = exc.__cause__ or getattr(exc, "cause", None)
    return None


def checkpoints(config: Config) -> dict[str, str]:
    """The checkpoints a run of these settings reads, by their setting: the ADM and the student, the DIRE
    classifier for the dire method, the lite detector for a cascade."""
    specs = {"weights.adm": config.weights.adm, "weights.student": config.weights.student}
    if config.method != "distildire":
        specs["weights.dire"] = config.weights.dire
    if config.cascade.lite is not None:
        specs["cascade.lite"] = config.cascade.lite
    return specs


def resolved_checkpoints(config: Config) -> dict[str, Path]:
    """The files of `checkpoints(config)` on this machine (official weights downloaded where missing), by setting."""
    return {key: resolve(spec) if key.startswith("weights.") else Path(spec) for key, spec in checkpoints(config).items()}


def run_batch(
    config: Config,
    sources: Sequence[str],
    out_dir: str | Path,
    on_progress: Callable[[Progress], None] | None = None,
    retry_errors: bool = False,
) -> BatchSummary:
    """Scan `sources` on Ray with the settings of `config` (its `cluster:` section says where and how) into part
    files under `out_dir`, skipping inputs already there; one row per input. `retry_errors` scans again the
    inputs whose row is an error."""
    ray = require_ray()
    from ..engine.core import fingerprint

    settings = config.cluster
    if config.crops == "faces":
        FaceFinder().check()  # the decode tasks find faces: a missing cascade is one line here, not a failed task
    start = time.perf_counter()
    inputs = pending_inputs(sources)
    by_path = {item.path: item for item in inputs}
    paths = resolved_checkpoints(config)
    digests = {key: file_sha256(path) for key, path in paths.items()}
    check_settings(out_dir, fingerprint(config, digests))
    earlier = read_rows(out_dir) if Path(out_dir).is_dir() else {}
    fresh = {
        path: row for path, row in earlier.items()
        if path in by_path and (row.get("path"), row.get("size"), row.get("mtime_ns")) == by_path[path].key
        and not (retry_errors and row.get("status") == "error")
    }
    todo = [item for item in inputs if item.path not in fresh]
    writer = PartWriter(out_dir, settings.part_rows, settings.part_seconds)
    rows: dict[str, dict[str, Any]] = dict(fresh)
    results: list[FileResult] = []
    counts = {"errors": 0}

    def emit(result: FileResult) -> None:
        item = by_path[result.path]
        row = {**result.to_dict(), "size": item.size, "mtime_ns": item.mtime_ns}
        rows[result.path] = row
        results.append(result)
        counts["errors"] += result.status == "error"
        writer.add(row)
        report()

    def report() -> None:
        if on_progress is not None:
            on_progress(Progress(len(results), len(todo), counts["errors"], assembly.frames, time.perf_counter() - start))

    assembly = _Assembly(by_path, VerdictRule.of(config), emit)
    media = [item for item in todo if item.kind != "error"]
    try:
        for item in todo:
            if item.kind == "error":
                emit(FileResult(item.path, "unknown", status="error", error=item.error))
        if media:
            started = connect(ray, settings.address, settings.num_cpus)
            try:
                weights = {key: _ship(ray, path, digests[key]) if settings.ship_weights else str(path.resolve()) for key, path in paths.items()}
                _run_rounds(ray, media, config, weights, assembly, emit)
            finally:
                if started:
                    ray.shutdown()
    finally:
        writer.flush()
    order = [item.path for item in inputs]
    return BatchSummary([rows[p] for p in order if p in rows], len(fresh), len(results), assembly.frames, time.perf_counter() - start, writer.parts, results)


def _run_rounds(ray: Any, media: list[Pending], config: Config, weights: dict[str, Any], assembly: _Assembly, emit: Callable[[FileResult], None]) -> None:
    """Run rounds until every input has a row: the first shares tasks, retries run each input alone; then errors."""
    from ray.data import DataContext

    settings = config.cluster
    context = DataContext.get_current()
    before = (context.enable_progress_bars, context.max_errored_blocks)
    context.enable_progress_bars, context.max_errored_blocks = False, -1
    todo, last_error = media, None
    try:
        for attempt in range(settings.retries + 1):
            blocks = len(todo) if attempt else min(len(todo), MAX_BLOCKS)
            try:
                _round(ray, todo, blocks, config, weights, assembly)
            except Exception as exc:  # a Ray failure (a node lost, a worker killed): the inputs left go to the next round
                fatal = _fatal(exc)
                if fatal is not None:
                    raise fatal from None
                last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("cluster round %d failed (%s); retrying the inputs without a result", attempt + 1, last_error)
            assembly.files.clear()
            todo = [item for item in todo if item.path not in assembly.done_paths]
            if not todo:
                return
    finally:
        context.enable_progress_bars, context.max_errored_blocks = before
    for item in todo:
        why = f" (last error: {last_error})" if last_error else ""
        emit(FileResult(item.path, item.kind, status="error", error=f"{item.path}: no result after {settings.retries + 1} attempts; its worker failed each time{why}"))
