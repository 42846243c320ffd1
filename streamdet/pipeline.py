"""The concurrent scan: decoder threads → bounded queue → batched detector → per-file results.

Decoding runs in a pool of threads (PyAV releases the GIL) while the detector computes: files in
parallel, and the GOPs of a file in parallel when there are more cores than files. Frames of several
files share batches, and every frame keeps its source, index and time so scores are never matched up by
position. The queue holds at most a batch of frames, so memory does not grow with video length.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .aggregate import file_score, flagged, verdict
from .errors import StreamdetError
from .video import DecodeStats, Frame, Sampling, expand_inputs, iter_frames
from .video.parallel import workers_available

if TYPE_CHECKING:
    from .detector import Detector


@dataclass
class FrameScore:
    """The score of one frame, by its index and presentation time in seconds (None where it was not finite);
    with several methods, `score` is the primary one's and `scores` has each method's."""

    index: int
    time: float
    score: float | None
    scores: dict[str, float | None] | None = None


@dataclass
class FileResult:
    """What a scan says about one input: status, verdict, file score, flagged frame count, frame scores."""

    path: str
    kind: str
    status: str = "ok"
    error: str | None = None
    warning: str | None = None
    verdict: str | None = None
    score: float | None = None
    flagged: int = 0
    frames: list[FrameScore] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    methods: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the fields in a stable order (`methods` and frame `scores` only when several methods ran)."""
        out = dataclasses.asdict(self)
        if self.methods is None:
            del out["methods"]
            for frame in out["frames"]:
                del frame["scores"]
        return out


@dataclass
class _Done:
    """End-of-file marker a decoder thread puts after the file's last frame."""

    path: str
    error: str | None
    decode_s: float
    warning: str | None = None


@dataclass
class _FileState:
    result: FileResult
    started: float
    queued: int = 0
    model_s: float = 0.0
    done: _Done | None = None


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless the scan is stopping (so a decoder never blocks forever on a full queue)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode(path: str, sampling: Sampling, q: queue.Queue, stop: threading.Event, workers: int) -> None:
    """Decode one input onto the queue, then its end marker with any error and what the decoder lost."""
    start = time.perf_counter()
    error = None
    stats = DecodeStats()
    try:
        for frame in iter_frames(path, sampling, stats, workers):
            if not _put(q, frame, stop):
                return
    except StreamdetError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder bug must not take the other files down
        error = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
    _put(q, _Done(path, error, time.perf_counter() - start, stats.warning()), stop)


def _finish(state: _FileState, threshold: float, top_fraction: float) -> FileResult:
    """Aggregate a file whose frames are all scored; a partial decode is a warning, a non-finite score an error."""
    result = state.result
    done = state.done
    result.frames.sort(key=lambda f: (f.index, f.time))
    result.timings = {
        "decode_s": round(done.decode_s, 4),
        "model_s": round(state.model_s, 4),
        "total_s": round(time.perf_counter() - state.started, 4),
    }
    if not result.frames:
        result.status = "error"
        result.error = done.error or f"{result.path}: no frames could be decoded"
        return result
    notes = [done.warning] if done.warning else []
    if done.error:
        notes.append(f"decoding stopped early: {done.error}")
    result.warning = "; ".join(notes) or None
    bad = [f for f in result.frames if not all(math.isfinite(v) for v in (f.scores or {"": f.score}).values())]
    if bad:
        for frame in bad:
            frame.score = None
            frame.scores = {m: v if math.isfinite(v) else None for m, v in frame.scores.items()} if frame.scores else None
        result.status = "error"
        result.error = (
            f"{result.path}: {len(bad)} of {len(result.frames)} frame scores are not finite (NaN or infinite), "
            "so there is no verdict; check the model weights and precision"
        )
        return result
    scores = [f.score for f in result.frames]
    result.score = file_score(scores, top_fraction)
    result.verdict = verdict(result.score, threshold)
    result.flagged = flagged(scores, threshold)
    if result.frames[0].scores is not None:
        result.methods = {}
        for method in result.frames[0].scores:
            by_method = [f.scores[method] for f in result.frames]
            score = file_score(by_method, top_fraction)
            result.methods[method] = {"verdict": verdict(score, threshold), "score": score, "flagged": flagged(by_method, threshold)}
    return result


def scan(
    detector: "Detector",
    paths: Sequence[str | Path],
    sampling: Sampling | None = None,
    threshold: float | None = None,
    top_fraction: float | None = None,
    workers: int | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Scan videos, images and folders; one result per input file, in input order, errors included."""
    config = detector.config
    sampling = sampling or Sampling(**dataclasses.asdict(config.sampling))
    threshold = config.threshold if threshold is None else threshold
    top_fraction = config.top_fraction if top_fraction is None else top_fraction
    inputs = expand_inputs(paths)
    order = {item.path: i for i, item in enumerate(inputs)}
    results: dict[str, FileResult] = {}

    def emit(result: FileResult) -> None:
        results[result.path] = result
        if on_result is not None:
            on_result(result)

    for item in inputs:
        if item.kind == "error":
            emit(FileResult(item.path, "unknown", status="error", error=item.error))
    media = [item for item in inputs if item.kind != "error"]
    states = {item.path: _FileState(FileResult(item.path, item.kind), time.perf_counter()) for item in media}
    batch_size = detector.batch.size
    q: queue.Queue = queue.Queue(maxsize=max(2, batch_size))
    stop = threading.Event()
    pending: list[Frame] = []

    def run_batch() -> None:
        start = time.perf_counter()
        by_method = {m: s.tolist() for m, s in detector.scores(detector.preprocess([f.image for f in pending])).items()}
        share = (time.perf_counter() - start) / len(pending)
        for row, frame in enumerate(pending):
            state = states[frame.source]
            several = {m: s[row] for m, s in by_method.items()} if len(by_method) > 1 else None
            state.result.frames.append(FrameScore(frame.index, frame.time, by_method[detector.method][row], several))
            state.model_s += share
        if on_frames is not None:
            on_frames(len(pending))
        pending.clear()
        finish_ready()

    def finish_ready() -> None:
        for path, state in list(states.items()):
            if state.done is not None and len(state.result.frames) == state.queued:
                emit(_finish(states.pop(path), threshold, top_fraction))

    cores = workers_available()
    n_workers = workers or min(cores, max(1, len(media)))
    gop_workers = max(1, cores // n_workers)
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="streamdet-decode") as pool:
        try:
            for item in media:
                pool.submit(_decode, item.path, sampling, q, stop, gop_workers)
            while states:
                try:
                    got = q.get(timeout=0.05) if pending else q.get(timeout=1.0)
                except queue.Empty:
                    if pending:
                        run_batch()
                    continue
                if isinstance(got, _Done):
                    states[got.path].done = got
                    if not pending:
                        finish_ready()
                    continue
                states[got.source].queued += 1
                pending.append(got)
                if len(pending) >= batch_size:
                    run_batch()
        finally:
            stop.set()
    return sorted(results.values(), key=lambda r: order[r.path])
