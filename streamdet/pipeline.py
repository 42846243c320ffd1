"""The concurrent scan: decoder threads → bounded queue → batched detector → per-file results.

Batches are double-buffered: a batch is sent to the device and the batch before it is read back only
then, so on a GPU the host gathers and uploads the next frames while the current ones compute.

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
from .crops import MODES
from .errors import ConfigError, StreamdetError
from .upload import PendingScores
from .video import DecodeStats, Frame, Sampling, expand_inputs, iter_frames
from .video.parallel import workers_available

if TYPE_CHECKING:
    from .detector import Detector


@dataclass
class FrameScore:
    """The score of one frame, by its index and presentation time in seconds (None where it was not finite).

    With crops other than the center rule, `crop` is the box (x, y, w, h) that gave the frame its score (the
    highest) and `crops` every crop scored: its kind (cover, face, or center where no face was found), box and score.
    """

    index: int
    time: float
    score: float | None
    crop: list[int] | None = None
    crops: list[dict[str, Any]] | None = None


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the fields in a stable order (frames' crop fields only where crops were used)."""
        out = dataclasses.asdict(self)
        for frame in out["frames"]:
            if frame["crops"] is None:
                del frame["crop"], frame["crops"]
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


def _frame_scores(frames: list[Frame], values: list[float], layout: list | None) -> list[FrameScore]:
    """Each frame's score: its one value, or with crops the highest of its crops' values (non-finite if any is)."""
    if layout is None:
        return [FrameScore(frame.index, frame.time, score) for frame, score in zip(frames, values)]
    out = []
    position = 0
    for frame, (kind, boxes) in zip(frames, layout):
        scores = values[position : position + len(boxes)]
        position += len(boxes)
        best = max(range(len(scores)), key=scores.__getitem__)
        score = scores[best] if all(math.isfinite(v) for v in scores) else math.nan
        crops = [{"kind": kind, "box": list(box), "score": value} for box, value in zip(boxes, scores)]
        out.append(FrameScore(frame.index, frame.time, score, list(boxes[best]), crops))
    return out


def _finish(state: _FileState, threshold: float, top_fraction: float, band: Sequence[float] | None = None) -> FileResult:
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
    bad = [f for f in result.frames if not math.isfinite(f.score)]
    if bad:
        for frame in bad:
            frame.score = None
            for crop in frame.crops or []:
                crop["score"] = crop["score"] if math.isfinite(crop["score"]) else None
        result.status = "error"
        result.error = (
            f"{result.path}: {len(bad)} of {len(result.frames)} frame scores are not finite (NaN or infinite), "
            "so there is no verdict; check the model weights and precision"
        )
        return result
    scores = [f.score for f in result.frames]
    result.score = file_score(scores, top_fraction)
    result.verdict = verdict(result.score, threshold, band)
    result.flagged = flagged(scores, threshold, band)
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
    crops: str | None = None,
    band: Sequence[float] | None = None,
    on_scored: Callable[[Frame, FrameScore], None] | None = None,
) -> list[FileResult]:
    """Scan videos, images and folders; one result per input file, in input order, errors included.

    `crops` (default: the config's) picks the regions scored per frame (`streamdet.crops`); `band` (LOW, HIGH)
    (default: the config's `uncertain`) adds the UNCERTAIN verdict; `on_scored` sees each frame with its score.
    """
    config = detector.config
    crops = crops or config.crops
    band = config.uncertain if band is None else band
    if crops not in MODES:
        raise ConfigError(f"crops {crops!r}: expected one of {', '.join(MODES)}")
    if crops == "faces":
        detector.faces.check()
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
    in_flight: list[tuple[list[Frame], PendingScores, float, list | None]] = []

    def run_batch() -> None:
        """Send the pending frames to the device, then read back the batch sent before (computed meanwhile)."""
        started = time.perf_counter()
        images = [f.image for f in pending]
        x, layout = (detector.preprocess(images), None) if crops == "center" else detector.preprocess_crops(images, crops)
        in_flight.append((list(pending), detector.score_async(x), started, layout))
        pending.clear()
        if len(in_flight) > 1:
            collect()

    def collect() -> None:
        """Read back the oldest batch in flight and file its scores under their frames."""
        frames, scores, started, layout = in_flight.pop(0)
        values = scores.result()
        share = (time.perf_counter() - started) / len(frames)
        for frame, scored in zip(frames, _frame_scores(frames, values, layout)):
            state = states[frame.source]
            state.result.frames.append(scored)
            state.model_s += share
            if on_scored is not None:
                on_scored(frame, scored)
        if on_frames is not None:
            on_frames(len(frames))
        finish_ready()

    def finish_ready() -> None:
        for path, state in list(states.items()):
            if state.done is not None and len(state.result.frames) == state.queued:
                emit(_finish(states.pop(path), threshold, top_fraction, band))

    cores = workers_available()
    n_workers = workers or min(cores, max(1, len(media)))
    gop_workers = max(1, cores // n_workers)
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="streamdet-decode") as pool:
        try:
            for item in media:
                pool.submit(_decode, item.path, sampling, q, stop, gop_workers)
            while states:
                try:
                    got = q.get(timeout=0.05) if pending or in_flight else q.get(timeout=1.0)
                except queue.Empty:
                    if pending:
                        run_batch()
                    elif in_flight:
                        collect()
                    continue
                if isinstance(got, _Done):
                    states[got.path].done = got
                    if not pending and not in_flight:
                        finish_ready()
                    continue
                states[got.source].queued += 1
                pending.append(got)
                if len(pending) >= batch_size:
                    run_batch()
        finally:
            stop.set()
    return sorted(results.values(), key=lambda r: order[r.path])
