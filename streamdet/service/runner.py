"""The jobs' one scoring loop: decoder threads per job → one bounded frame queue → one thread that owns the engine.

Frames of every running job meet in the queue, so one model call carries frames of many clients (as `scan`
batches the files of one command line). Calls are double-buffered like `scan`'s: a batch is sent, then the
batch before it read back. Each job's frames keep their order and identity; when a job's decoder is done and
all its frames are scored, the engine's `conclude` gives it its verdict and the result is stored.

A job's settings (sampling, crops, threshold, band) are its own: it gets an `Engine` of its settings around
the server's one scorer, so its frames are scored and concluded exactly as `scan` with those options would.
Frames of jobs in different crop modes go to the device in separate calls.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..crops import crop_boxes
from ..engine import Engine, InFlight
from ..errors import MediaError, StreamdetError
from ..report.html import Thumbnails, to_html
from ..report.text import to_json
from ..results import FileResult
from ..video import DecodeStats, Frame, iter_frames
from ..video.parallel import put_unless_stopped, workers_available
from .options import OptionError, ScanOptions, job_settings

if TYPE_CHECKING:
    from ..config import Config
    from .callbacks import Callbacks
    from .metrics import Metrics
    from .spool import Spool
    from .store import Job, JobStore

log = logging.getLogger("streamdet.serve")

MAX_ATTEMPTS = 3  # a job whose runs were all cut short by the server stopping is ended with an error, not tried forever
EXPIRE_EVERY_S = 60.0


@dataclass
class _Done:
    """A decoder's end-of-job marker: its error (if it stopped), decode time and what it lost."""

    error: str | None
    decode_s: float
    warning: str | None
    duration: float | None = None


@dataclass(eq=False)  # compared and hashed by identity: one per claimed job
class Running:
    """A job between its claim and its stored result, with what the scoring loop knows of it."""

    job: "Job"
    engine: Engine
    result: FileResult
    stop: threading.Event = field(default_factory=threading.Event)
    thumbs: Thumbnails = field(default_factory=Thumbnails)
    decoded: int = 0
    queued: int = 0
    scored: int = 0
    model_s: float = 0.0
    done: _Done | None = None
    failure: str | None = None
    cancelled: bool = False

    def progress(self) -> dict[str, Any]:
        """Frames decoded and scored so far, and the share done where the frame count is known."""
        expected = self.job.expected_frames
        share = None if not expected else round(min(0.99, self.scored / expected), 3)
        return {"frames_decoded": self.decoded, "frames_scored": self.scored, "expected_frames": expected, "fraction": share}


class Runner:
    """Claims queued jobs, decodes up to `decode_jobs` of them at once and scores all their frames in one loop."""

    def __init__(
        self, settings: "Config", store: "JobStore", spool: "Spool", metrics: "Metrics", callbacks: "Callbacks", on_finished: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.callbacks = callbacks
        self.store = store
        self.spool = spool
        self.metrics = metrics
        self.on_finished = on_finished
        self.engine: Engine | None = None
        # enough jobs decoding that the next batch is waiting in the queue while the current one computes
        self.decode_jobs = settings.serve.decode_jobs or max(2 * settings.batch, workers_available())
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=max(2, settings.batch))
        self._decoders = ThreadPoolExecutor(self.decode_jobs, thread_name_prefix="streamdet-serve-decode")
        self._finisher = ThreadPoolExecutor(1, thread_name_prefix="streamdet-serve-finish")
        self._threads: list[threading.Thread] = []

    def start(self, engine: Engine) -> None:
        """Begin claiming and scoring jobs with `engine` (the server's, loaded once)."""
        self.engine = engine
        for target, name in ((self._dispatch, "streamdet-serve-dispatch"), (self._score, "streamdet-serve-score")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def ready(self) -> bool:
        """Whether the models are loaded and jobs are being run."""
        return self.engine is not None and not self._stop.is_set() and all(thread.is_alive() for thread in self._threads)

    def wake(self) -> None:
        """A job was queued: claim it now rather than at the next poll."""
        self._wake.set()

    def progress(self, job_id: str) -> dict[str, Any] | None:
        """The live progress of a running job, or None where it is not running here."""
        with self._lock:
            running = self._running.get(job_id)
        return None if running is None else running.progress()

    def cancel(self, job_id: str) -> None:
        """Stop a running job: its decoder stops and its frames are dropped (the caller deletes its row)."""
        with self._lock:
            running = self._running.pop(job_id, None)
        if running is not None:
            running.cancelled = True
            running.stop.set()
            self._wake.set()

    def close(self) -> None:
        """Stop claiming and decoding; jobs still running stay `running` in the table and run again at the next start."""
        self._stop.set()
        with self._lock:
            for running in self._running.values():
                running.stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5.0)
        self._decoders.shutdown(wait=False, cancel_futures=True)
        self._finisher.shutdown(wait=True)

    # the dispatcher thread: claims queued jobs, starts their decoders, expires old results

    def _dispatch(self) -> None:
        expired_at = 0.0
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if time.monotonic() - expired_at > EXPIRE_EVERY_S:
                expired_at = time.monotonic()
                self.store.expire(time.time() - self.settings.serve.retention)
            while not self._stop.is_set():
                with self._lock:
                    room = self.decode_jobs - len(self._running)
                jobs = self.store.claim(room) if room > 0 else []
                for job in jobs:
                    self._begin(job)
                if len(jobs) < room or not jobs:
                    break

    def _begin(self, job: "Job") -> None:
        """Start decoding a claimed job, or end it at once where it cannot run."""
        if job.attempts > MAX_ATTEMPTS:
            self._end(job, "error", None, None, f"{job.name}: the server stopped while scanning it {job.attempts - 1} times; not tried again")
            return
        try:
            settings = job_settings(self.settings, ScanOptions.model_validate(job.options))
        except OptionError as exc:  # options were valid when accepted; a changed server config may refuse them now
            self._end(job, "error", None, None, f"{job.name}: {exc}")
            return
        running = Running(job, self.engine.with_settings(settings), FileResult(job.name, job.kind))
        with self._lock:
            self._running[job.id] = running
        self._decoders.submit(self._decode, running)

    # decoder threads: one job each

    def _decode(self, running: Running) -> None:
        """Put the job's sampled frames on the queue (with their crop boxes), then its end marker."""
        settings = running.engine.settings
        scorer = running.engine.scorer
        crops = settings.crops
        planes = scorer.device.type == "cuda" and crops != "faces"  # as scan: YUV planes to the GPU, faces need RGB
        workers = max(1, workers_available() // self.decode_jobs)
        limit = self.settings.serve.max_frames
        stats = DecodeStats()
        start = time.perf_counter()
        error = None
        try:
            for frame in iter_frames(running.job.source, settings.sampling, stats, workers, planes, cores=workers, max_pixels=settings.max_pixels):
                if running.decoded >= limit:
                    raise MediaError(f"{running.job.name}: more than {limit} sampled frames; this server scores at most {limit} per job")
                frame = dataclasses.replace(frame, source=running.job.name)
                layout = None if crops == "center" else crop_boxes(frame.image, crops, scorer.faces)
                if not put_unless_stopped(self._frames, (running, frame, layout), running.stop):
                    return
                running.decoded += 1
        except StreamdetError as exc:
            error = str(exc)
        except Exception as exc:  # a decoder bug ends this job with an error, never the server
            error = f"{running.job.name}: cannot decode ({type(exc).__name__}: {exc})"
        done = _Done(self._named(running, error), time.perf_counter() - start, self._named(running, stats.warning()), stats.duration)
        put_unless_stopped(self._frames, (running, done, None), running.stop)

    @staticmethod
    def _named(running: Running, text: str | None) -> str | None:
        """A decoder message with the server's path of the file replaced by the job's name for it."""
        return None if text is None else text.replace(os.fspath(running.job.source), running.job.name)

    # the scoring thread: the only one that calls the engine

    def _score(self) -> None:
        pending: dict[str, list[tuple[Running, Frame, Any]]] = {}
        in_flight: list[tuple[InFlight, list[Running], str, float]] = []
        while not self._stop.is_set():
            try:
                running, item, layout = self._frames.get(timeout=(0.02 if self._decoding() else 0.0) if pending or in_flight else 0.5)
            except queue.Empty:
                if pending:
                    self._send(pending, next(iter(pending)), in_flight)
                elif in_flight:
                    self._collect(in_flight)
                continue
            if running.cancelled:
                continue
            if isinstance(item, _Done):
                running.done = item
                self._finish_ready(running)
                continue
            running.queued += 1
            mode = running.engine.settings.crops
            pending.setdefault(mode, []).append((running, item, layout))
            if len(pending[mode]) >= self.engine.scorer.batch.size:
                self._send(pending, mode, in_flight)

    def _decoding(self) -> bool:
        """Whether a running job may still put frames on the queue (else a partial batch waits for nothing)."""
        with self._lock:
            return any(running.done is None for running in self._running.values())

    def _send(self, pending: dict[str, list], mode: str, in_flight: list) -> None:
        """Send the pending frames of one crop mode as one model call, then read back the call before it."""
        batch = pending.pop(mode)
        jobs = [running for running, _, _ in batch]
        layouts = [layout for _, _, layout in batch] if mode != "center" else None
        try:
            sent = jobs[0].engine.send([frame for _, frame, _ in batch], layouts)
        except Exception as exc:  # a failed call ends the jobs in it with an error, never the loop
            self._failed(jobs, exc)
        else:
            in_flight.append((sent, jobs, mode, time.perf_counter()))
            self.metrics.sent(len(batch), self.engine.scorer.batch.size)
        if len(in_flight) >= self.engine.depth:
            self._collect(in_flight)

    def _collect(self, in_flight: list) -> None:
        """Read back the oldest call in flight and file each score under its job."""
        sent, jobs, _, started = in_flight.pop(0)
        try:
            scores = sent.collect()
        except Exception as exc:
            self._failed(jobs, exc)
            return
        share = (time.perf_counter() - started) / max(1, len(scores))
        for running, frame, score in zip(jobs, sent.frames, scores):
            running.result.frames.append(score)
            if isinstance(frame.image, np.ndarray):  # the report's thumbnails are cut from RGB frames (not YUV planes sent to a GPU)
                running.thumbs.add(frame, score)
            running.model_s += share
            running.scored += 1
        self.metrics.scored(len(scores))
        for running in dict.fromkeys(jobs):
            self._finish_ready(running)

    def _failed(self, jobs: list[Running], exc: Exception) -> None:
        """Count the frames of a failed model call as done and mark their jobs as failed."""
        text = " ".join(str(exc).split())[:300]
        for running in jobs:
            running.failure = running.failure or f"{running.job.name}: scoring failed ({type(exc).__name__}: {text})"
            running.scored += 1
        log.error("a model call failed: %s: %s", type(exc).__name__, text)
        for running in dict.fromkeys(jobs):
            self._finish_ready(running)

    def _finish_ready(self, running: Running) -> None:
        """Hand a job whose decoder is done and whose frames are all scored to the finisher thread."""
        if running.cancelled or running.done is None or running.scored < running.queued:
            return
        with self._lock:
            if self._running.pop(running.job.id, None) is None:
                return
        self._wake.set()
        self._finisher.submit(self._conclude, running)

    # the finisher thread: verdict, documents, storage

    def _conclude(self, running: Running) -> None:
        """The job's verdict by the engine's rule, its JSON document and HTML report, stored; its upload removed."""
        try:
            done = running.done
            result = running.result
            result.timings = {"decode_s": round(done.decode_s, 4), "model_s": round(running.model_s, 4), "total_s": round(done.decode_s + running.model_s, 4)}
            if running.failure is not None:
                result = FileResult(result.path, result.kind, status="error", error=running.failure)
            else:
                result.duration = done.duration
                result = running.engine.conclude(result, done.error, done.warning)
            info = running.engine.run_info().to_dict()
            document = to_json([result], info)
            report = to_html([result], info, running.thumbs)
            status = "error" if result.status == "error" else "done"
            self._end(running.job, status, document, report, result.error, result)
        except Exception as exc:  # never lose the job: it ends with the error
            log.exception("finishing job %s failed", running.job.id)
            self._end(running.job, "error", None, None, f"{running.job.name}: cannot finish ({type(exc).__name__}: {exc})")

    def _end(self, job: "Job", status: str, document: str | None, report: str | None, error: str | None, result: FileResult | None = None) -> None:
        """Store a job's outcome, remove its upload, count it and tell whoever waits for it (its callback too)."""
        stored = self.store.finish(job.id, status, document, report, error)
        if stored:
            self.metrics.finished(status, time.time() - job.created)
        if job.spooled:
            self.spool.remove(job.source)
        self.on_finished(job.id)
        if stored and job.callback is not None:
            verdict = {"verdict": result.verdict, "score": result.score} if result is not None else {}
            self.callbacks.send(job.callback, {
                "event": "scan.finished", "id": job.id, "status": status, "name": job.name, **verdict, "error": error,
                "links": {"self": f"/v1/scans/{job.id}", "report": f"/v1/scans/{job.id}/report"},
            })
