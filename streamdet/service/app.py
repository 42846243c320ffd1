"""The HTTP API (FastAPI): submit a scan, read its status, result and report, delete it; health, readiness, metrics; the page.

Every error is a JSON object `{"error": "one line"}` with the status that says what kind it is: 401 no valid
token, 404 unknown job, 409 not finished, 413 upload too large, 415 not media, 422 bad options or media
beyond a limit, 429 a full queue (with `Retry-After`). Requests that submit work are checked against the
limits before the upload is read where the headers allow, and again on the bytes themselves.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..config import Config
from ..version import __version__
from .auth import Tokens
from .callbacks import allowed
from .form import FormError, FormReader, TooLarge
from .media import NotMedia, OverLimit, check_limits, inspect
from .metrics import Metrics
from .options import OptionError, ScanOptions, job_settings, parse_options
from .runner import Runner
from .spool import Spool
from .store import Full, Job, JobStore

STATIC = Path(__file__).resolve().parent / "static"
MAX_WAIT_S = 60.0
MAX_JSON_BYTES = 64 * 1024
FORM_SLACK = 64 * 1024  # multipart boundaries, part headers and option fields around the file
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-src 'self'; object-src 'none'; base-uri 'none'"
REPORT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    """An answer other than success: HTTP status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Waiters:
    """Requests waiting (`?wait=`) for jobs to end; `notify` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def add(self, job_id: str) -> asyncio.Event:
        """An event set when `job_id` ends (register before reading the job's state, so no end is missed)."""
        event = asyncio.Event()
        with self._lock:
            self._events.setdefault(job_id, []).append((asyncio.get_running_loop(), event))
        return event

    def remove(self, job_id: str, event: asyncio.Event) -> None:
        """Stop waiting."""
        with self._lock:
            left = [(loop, e) for loop, e in self._events.get(job_id, []) if e is not event]
            if left:
                self._events[job_id] = left
            else:
                self._events.pop(job_id, None)

    def notify(self, job_id: str) -> None:
        """`job_id` has ended: wake its waiters."""
        with self._lock:
            waiting = self._events.pop(job_id, [])
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)


@dataclass
class Service:
    """Everything a request handler needs: the settings, the job table, the spool, the runner, tokens, metrics."""

    settings: Config
    store: JobStore
    spool: Spool
    runner: Runner
    metrics: Metrics
    tokens: Tokens
    waiters: Waiters = field(default_factory=Waiters)
    load_error: str | None = None

    def owner(self, request: Request) -> str:
        """The owner of the request's jobs, or 401."""
        owner = self.tokens.owner(request.headers.get("authorization"))
        if owner is None:
            raise ApiError(401, "missing or invalid API token (send Authorization: Bearer TOKEN)", {"WWW-Authenticate": "Bearer"})
        return owner

    def retry_after(self) -> dict[str, str]:
        """A Retry-After header: about the time one job takes now, 1 to 60 s."""
        return {"Retry-After": str(max(1, min(60, round(self.metrics.typical_job_s()))))}

    def room_for(self, owner: str) -> None:
        """429 now, before an upload is read, where the queue or this token's share is already full."""
        limits = self.settings.serve
        if self.store.active() >= limits.queue_size:
            self.metrics.rejected.labels(reason="queue").inc()
            raise ApiError(429, f"the queue is full ({limits.queue_size} jobs); retry later", self.retry_after())
        if self.store.active(owner) >= limits.jobs_per_token:
            self.metrics.rejected.labels(reason="token").inc()
            raise ApiError(429, f"this token has {limits.jobs_per_token} jobs queued or running, its limit; retry when one ends", self.retry_after())


def create_app(service: Service) -> FastAPI:
    """The ASGI app of `service`."""
    app = FastAPI(
        title="streamdet", version=__version__, docs_url=None, redoc_url=None,
        description="Find diffusion- and GAN-made frames in videos and images: submit a scan, poll it, read its result and report.",
    )
    limits = service.settings.serve

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
        return JSONResponse({"error": f"{where}: {error.get('msg', 'invalid')}"}, 422)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Models loaded and the queue accepting jobs")
    def readyz() -> JSONResponse:
        counts = service.store.counts()
        active = counts["queued"] + counts["running"]
        if service.load_error is not None:
            return JSONResponse({"status": "failed", "error": service.load_error}, 503)
        if not service.runner.ready:
            return JSONResponse({"status": "loading"}, 503)
        if active >= limits.queue_size:
            return JSONResponse({"status": "full", "jobs": active, "queue_size": limits.queue_size}, 503)
        return JSONResponse({"status": "ready", "jobs": active, "queue_size": limits.queue_size})

    @app.get("/metrics", summary="Prometheus metrics")
    def metrics(request: Request) -> Response:
        service.owner(request)
        return Response(service.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/scans", status_code=202, summary="Submit a scan: an upload (multipart) or a path under the media root (JSON)", openapi_extra=_SUBMIT_DOC)
    async def submit(request: Request, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S, description="Seconds to wait for the result")) -> JSONResponse:
        owner = service.owner(request)
        await run_in_threadpool(service.room_for, owner)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            values, upload, filename = await _read_upload(request, service)
        elif kind == "application/json":
            values, upload, filename = await _read_json(request), None, None
        else:
            raise ApiError(415, "send multipart/form-data (a `file` part and options) or application/json (a `path` under the media root and options)")
        try:
            job = await run_in_threadpool(_accept, service, owner, values, upload, filename, request.headers.get("idempotency-key"))
        finally:
            if upload is not None and upload.exists():
                upload.unlink()
        service.runner.wake()
        if wait > 0:
            job = await _wait_for(service, job, wait)
        return _answer(service, job)

    @app.get("/v1/scans", summary="This token's jobs, oldest first")
    def listing(request: Request) -> dict[str, Any]:
        owner = service.owner(request)
        return {"jobs": [{**j, "created": _when(j["created"]), "finished": _when(j["finished"])} for j in service.store.listing(owner)]}

    @app.get("/v1/scans/{job_id}", summary="A job's status and progress; when done, the document `scan --json` writes for its input")
    async def status(request: Request, job_id: str, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_S, description="Seconds to wait for the job to end")) -> JSONResponse:
        owner = service.owner(request)
        job = await run_in_threadpool(_find, service, job_id, owner)
        if wait > 0:
            job = await _wait_for(service, job, wait)
        return _answer(service, job, 200)

    @app.get("/v1/scans/{job_id}/report", summary="The HTML report of a finished job (as `scan --report` writes it)", response_class=HTMLResponse)
    def report(request: Request, job_id: str) -> HTMLResponse:
        job = _find(service, job_id, service.owner(request))
        if job.report is None:
            raise ApiError(409, f"job {job_id} is {job.status}; its report is ready when it is done" if job.status in ("queued", "running") else f"job {job_id} ended without a report: {job.error}")
        return HTMLResponse(job.report, headers={"Content-Security-Policy": REPORT_POLICY, "X-Content-Type-Options": "nosniff"})

    @app.delete("/v1/scans/{job_id}", summary="Cancel a queued or running job, or forget a finished one")
    def delete(request: Request, job_id: str) -> dict[str, Any]:
        job = _find(service, job_id, service.owner(request))
        service.runner.cancel(job.id)
        service.store.delete(job.id)
        if job.spooled:
            service.spool.remove(job.source)
        service.waiters.notify(job.id)
        return {"id": job.id, "deleted": True, "was": job.status}

    return app


_SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}, **{k: {"type": "string"} for k in ScanOptions.model_fields}},
            }},
            "application/json": {"schema": {
                "type": "object", "required": ["path"],
                "properties": {"path": {"type": "string", "description": "A file under the server's media root"}, **ScanOptions.model_json_schema()["properties"]},
            }},
        },
    },
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "A retried submission with the same key (and token) returns the first job instead of a new one"}],
}


async def _read_upload(request: Request, service: Service) -> tuple[dict[str, str], Path | None, str | None]:
    """The form's text fields and its file part, streamed into a spool file (413 past the upload limit)."""
    limit = service.settings.serve.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > 2 * limit + FORM_SLACK:
        raise ApiError(413, f"upload of {int(declared):,} bytes; this server accepts at most {limit:,}")
    try:
        reader = FormReader(request.headers["content-type"], service.spool.open_partial, limit)
    except FormError as exc:
        raise ApiError(400, str(exc)) from None
    chunks = request.stream()
    try:
        async for chunk in chunks:
            reader.feed(chunk)
        form = reader.finish()
    except TooLarge:
        reader.close()
        await _drain(chunks, 2 * limit)
        _discard(reader.form.path)
        raise ApiError(413, f"upload larger than {limit:,} bytes, the most this server accepts") from None
    except FormError as exc:
        reader.close()
        _discard(reader.form.path)
        raise ApiError(400, str(exc)) from None
    finally:
        reader.close()
    return form.fields, form.path, form.filename


async def _drain(chunks: AsyncIterator[bytes], most: int) -> None:
    """Read and drop up to `most` more bytes of a refused body, so the client can read the answer."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > most:
            return


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


async def _read_json(request: Request) -> dict[str, Any]:
    """A JSON object of at most MAX_JSON_BYTES."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, f"JSON body larger than {MAX_JSON_BYTES:,} bytes")
    try:
        values = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"body is not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ApiError(422, "the JSON body must be an object of options")
    return values


def _accept(service: Service, owner: str, values: dict[str, Any], upload: Path | None, filename: str | None, key: str | None) -> Job:
    """Check the options and the media against the limits, keep the upload in the spool and admit the job (blocking)."""
    values = dict(values)
    path = values.pop("path", None)
    if (upload is None) == (path is None):
        raise ApiError(422, "give either a `file` part (an upload) or a `path` under the media root, not both or neither")
    try:
        options = parse_options(values)
        settings = job_settings(service.settings, options)
    except OptionError as exc:
        raise ApiError(422, str(exc)) from None
    limits = service.settings.serve
    if options.callback is not None and not allowed(options.callback, limits.webhooks):
        raise ApiError(422, f"option callback: {options.callback!r} is not a URL this server may call (the operator's serve.webhooks)")
    source, name = (upload, _display_name(filename)) if upload is not None else _under_media_root(service, str(path))
    try:
        facts = inspect(source)
        expected = check_limits(facts, settings.sampling, settings.max_pixels, limits.max_duration, limits.max_frames)
    except NotMedia as exc:
        raise ApiError(415, f"{name}: {exc}") from None
    except OverLimit as exc:
        raise ApiError(422, f"{name}: {exc}") from None
    job_id = uuid.uuid4().hex
    if upload is not None:
        source = service.spool.keep(upload, job_id)
    stored = options.model_dump(exclude_defaults=True)
    job = Job(job_id, owner, "queued", name, facts.kind, str(source), upload is not None, stored, _now(), expected, options.callback, key)
    try:
        admitted = service.store.admit(job, limits.queue_size, limits.jobs_per_token)
    except Full as exc:
        if job.spooled:
            service.spool.remove(source)
        service.metrics.rejected.labels(reason=exc.reason).inc()
        what = f"the queue is full ({exc.limit} jobs)" if exc.reason == "queue" else f"this token has {exc.limit} jobs queued or running, its limit"
        raise ApiError(429, f"{what}; retry later", service.retry_after()) from None
    if admitted.id != job.id and job.spooled:  # a retried submission: the first one stands
        service.spool.remove(source)
    return admitted


def _under_media_root(service: Service, path: str) -> tuple[Path, str]:
    """The file `path` names under the media root (symbolic links resolved) and its name there, or an error."""
    root = service.settings.serve.media_root
    if root is None:
        raise ApiError(422, "this server reads no files of its own (no serve.media_root); upload the file instead")
    base = Path(root).resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise ApiError(403, f"{path}: outside the media root")
    if not target.is_file():
        raise ApiError(422, f"{path}: no such file under the media root")
    return target, target.relative_to(base).as_posix()


def _display_name(filename: str | None) -> str:
    """The client's name for an upload as a label only: its last path part, control characters removed, at most 200 characters."""
    name = _UNSAFE_NAME.sub("", re.split(r"[\\/]", filename or "")[-1]).strip()
    return name[:200] if name not in ("", ".", "..") else "upload"


def _find(service: Service, job_id: str, owner: str) -> Job:
    job = service.store.get(job_id, owner)
    if job is None:
        raise ApiError(404, f"no job {job_id} (never submitted by this token, deleted, or past its retention)")
    return job


async def _wait_for(service: Service, job: Job, seconds: float) -> Job:
    """`job` as it is once it ends, or after `seconds`."""
    if job.status not in ("queued", "running"):
        return job
    event = service.waiters.add(job.id)
    try:
        current = await run_in_threadpool(service.store.get, job.id)
        if current is not None and current.status in ("queued", "running"):
            try:
                await asyncio.wait_for(event.wait(), seconds)
            except asyncio.TimeoutError:
                pass
    finally:
        service.waiters.remove(job.id, event)
    return await run_in_threadpool(service.store.get, job.id) or job


def _answer(service: Service, job: Job, code: int | None = None) -> JSONResponse:
    """The job's status document; 202 (with Location) while it is not finished, else 200."""
    location = f"/v1/scans/{job.id}"
    doc: dict[str, Any] = {
        "id": job.id, "status": job.status, "name": job.name, "kind": job.kind, "created": _when(job.created),
        "started": _when(job.started), "finished": _when(job.finished), "attempts": job.attempts,
        "links": {"self": location, "report": f"{location}/report"},
    }
    if job.status == "running":
        doc["progress"] = service.runner.progress(job.id) or {"fraction": None}
    elif job.status == "queued":
        doc["progress"] = {"fraction": 0.0}
    else:
        doc["progress"] = {"fraction": 1.0}
        doc["error"] = job.error
        doc["result"] = json.loads(job.result) if job.result else None
    finished = job.status in ("done", "error")
    return JSONResponse(doc, code or (200 if finished else 202), headers={"Location": location})


def _now() -> float:
    return datetime.now(timezone.utc).timestamp()


def _when(epoch: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time."""
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
