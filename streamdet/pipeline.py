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
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .aggregate import file_score, flagged, verdict
from .crops import MODES, FaceFinder, best_crop, crop_boxes, frame_spans
from .errors import ConfigError, StreamdetError
from .upload import PendingScores
from .video import DecodeStats, Frame, Sampling, expand_inputs, iter_frames
from .video.nvdec import iter_frames_nvdec, resolve_decoder
from .video.parallel import put_unless_stopped, workers_available

if TYPE_CHECKING:
    from .detector import Detector


@dataclass
class FrameScore:
    """The score of one frame, by its index and presentation time in seconds (None where it was not finite).

    `scored_by` is the cascade's model for it (lite or full), None without a cascade. With crops other than the
    center rule, `crop` is the box (x, y, w, h) that gave the frame its score (the highest) and `crops` every crop
    scored: its kind (cover, face, or center where no face was found), box and score. With several methods,
    `score` is the primary one's and `scores` has each method's.
    """

    index: int
    time: float
    score: float | None
    scored_by: str | None = None
    crop: list[int] | None = None
    crops: list[dict[str, Any]] | None = None
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
        """A JSON-ready dict with the fields in a stable order (the frames' crop, cascade and per-method fields, and
        `methods`, only where used)."""
        out = dataclasses.asdict(self)
        if self.methods is None:
            del out["methods"]
        for frame in out["frames"]:
            if frame["crops"] is None:
                del frame["crop"], frame["crops"]
            for key in ("scored_by", "scores"):
                if frame[key] is None:
                    del frame[key]
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


@dataclass(frozen=True)
class _Decoding:
    """How a scan decodes: GOP workers per file, YUV planes for the device, and NVDEC (strictly, or where it can)."""

    workers: int
    planes: bool = False
    nvdec: str | None = None  # None, "nvdec" (every file, or an error) or "auto" (each file that NVDEC decodes)
    device: Any = None
    crops: str = "center"  # other modes get their boxes in the decode threads, off the loop that feeds the device
    faces: FaceFinder | None = None
    max_pixels: int | None = None  # larger pictures are refused before decoding (the config's max_pixels)


def _frames(path: str, sampling: Sampling, stats: DecodeStats, how: _Decoding) -> Iterator[Frame]:
    """The input's sampled frames from NVDEC where asked and possible, else from the CPU decoder."""
    frames = None
    if how.nvdec is not None:
        frames = iter_frames_nvdec(path, sampling, how.device, stats, strict=how.nvdec == "nvdec")
    return frames if frames is not None else iter_frames(path, sampling, stats, how.workers, how.planes, cores=how.workers, max_pixels=how.max_pixels)


def _decode(path: str, sampling: Sampling, q: queue.Queue, stop: threading.Event, how: _Decoding) -> None:
    """Decode one input onto the queue as (frame, its crop layout or None), then its end marker with any error and what the decoder lost."""
    start = time.perf_counter()
    error = None
    stats = DecodeStats()
    try:
        for frame in _frames(path, sampling, stats, how):
            layout = None if how.crops == "center" else crop_boxes(frame.image, how.crops, how.faces)
            if not put_unless_stopped(q, (frame, layout), stop):
                return
    except StreamdetError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder bug must not take the other files down
        error = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
    put_unless_stopped(q, _Done(path, error, time.perf_counter() - start, stats.warning()), stop)


def _frame_scores(
    frames: list[Frame], values: list[float], layout: list | None, scored_by: list[str] | None = None, by_method: dict[str, list[float]] | None = None
) -> list[FrameScore]:
    """Each frame's score: its one value, or with crops the highest of its crops' values (non-finite if any is);
    with several methods (`by_method`), each method's score the same way. `values` and `scored_by` have a row
    per crop; a frame is scored by the model of its highest crop."""
    by = scored_by or [None] * len(values)
    out = []
    for frame, (start, kind, boxes) in zip(frames, frame_spans(layout, len(frames))):
        scores = values[start : start + len(boxes)]
        several = {m: best_crop(v[start : start + len(boxes)])[0] for m, v in by_method.items()} if by_method else None
        if layout is None:
            out.append(FrameScore(frame.index, frame.time, scores[0], scored_by=by[start], scores=several))
            continue
        score, top = best_crop(scores)
        crops = [{"kind": kind, "box": list(box), "score": value} for box, value in zip(boxes, scores)]
        out.append(FrameScore(frame.index, frame.time, score, scored_by=by[start + top], crop=list(boxes[top]), crops=crops, scores=several))
    return out


def _finish(state: _FileState, threshold: float, top_fraction: float, band: Sequence[float] | None = None) -> FileResult:
    """Aggregate a file whose frames are all scored, with its timings."""
    done = state.done
    state.result.timings = {
        "decode_s": round(done.decode_s, 4),
        "model_s": round(state.model_s, 4),
        "total_s": round(time.perf_counter() - state.started, 4),
    }
    return conclude(state.result, done.error, done.warning, threshold, top_fraction, band)


def conclude(
    result: FileResult, error: str | None, warning: str | None, threshold: float, top_fraction: float, band: Sequence[float] | None = None
) -> FileResult:
    """Give a file whose frames are all scored its verdict (shared by scan and the cluster scan).

    `error` and `warning` are what its decoder reported; a partial decode is a warning, no frame or a
    non-finite score an error.
    """
    result.frames.sort(key=lambda f: (f.index, f.time))
    if not result.frames:
        result.status = "error"
        result.error = error or f"{result.path}: no frames could be decoded"
        return result
    notes = [warning] if warning else []
    if error:
        notes.append(f"decoding stopped early: {error}")
    result.warning = "; ".join(notes) or None
    bad = [f for f in result.frames if not all(math.isfinite(v) for v in (f.scores or {"": f.score}).values())]
    if bad:
        for frame in bad:
            frame.score = None
            for crop in frame.crops or []:
                crop["score"] = crop["score"] if math.isfinite(crop["score"]) else None
            frame.scores = {m: v if math.isfinite(v) else None for m, v in frame.scores.items()} if frame.scores else None
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
    if result.frames[0].scores is not None:
        result.methods = {}
        for method in result.frames[0].scores:
            by_method = [f.scores[method] for f in result.frames]
            score = file_score(by_method, top_fraction)
            result.methods[method] = {"verdict": verdict(score, threshold, band), "score": score, "flagged": flagged(by_method, threshold, band)}
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
    planes: bool | None = None,
    decoder: str = "cpu",
    crops: str | None = None,
    band: Sequence[float] | None = None,
    on_scored: Callable[[Frame, FrameScore], None] | None = None,
) -> list[FileResult]:
    """Scan videos, images and folders; one result per input file, in input order, errors included.

    `planes` sends 4:2:0 frames to the device as YUV planes, converted to RGB there (default: on CUDA only,
    where it saves the CPU's rgb24 conversion and halves the bytes copied). `decoder` is cpu, nvdec (NVIDIA
    hardware decoding into GPU memory; an error where it cannot) or auto (NVDEC for the files it can decode).
    `crops` (default: the config's) picks the regions scored per frame (`streamdet.crops`); `band` (LOW, HIGH)
    (default: the config's `uncertain`) adds the UNCERTAIN verdict; `on_scored` sees each frame with its score.
    """
    config = detector.config
    crops = crops or config.crops
    if crops not in MODES:
        raise ConfigError(f"crops {crops!r}: expected one of {', '.join(MODES)}")
    if crops == "faces":  # faces are found in RGB frames on the CPU
        detector.faces.check()
        if planes or decoder == "nvdec":
            raise ConfigError("--crops faces finds faces in RGB frames on the CPU: it cannot take YUV planes or --decoder nvdec (use cpu or auto)")
        planes, decoder = False, "cpu"
    planes = detector.device.type == "cuda" if planes is None else planes
    nvdec = decoder if resolve_decoder(decoder, detector.device) == "nvdec" else None
    band = config.uncertain if band is None else band
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
    layouts: list[tuple[str, list]] = []
    in_flight: list[tuple[list[Frame], PendingScores, float, list | None]] = []

    def run_batch() -> None:
        """Send the pending frames to the device, then read back the batch sent before (computed meanwhile)."""
        started = time.perf_counter()
        images = [f.image for f in pending]
        x, layout = (detector.preprocess(images), None) if crops == "center" else detector.preprocess_crops(images, crops, layouts)
        in_flight.append((list(pending), detector.score_async(x), started, layout))
        pending.clear()
        layouts.clear()
        if len(in_flight) > 1:
            collect()

    def collect() -> None:
        """Read back the oldest batch in flight and file its scores under their frames."""
        frames, scores, started, layout = in_flight.pop(0)
        values = scores.result()
        share = (time.perf_counter() - started) / len(frames)
        for frame, scored in zip(frames, _frame_scores(frames, values, layout, scores.scored_by, scores.by_method())):
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
    how = _Decoding(max(1, cores // n_workers), planes, nvdec, detector.device, crops, detector.faces, config.max_pixels)
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="streamdet-decode") as pool:
        try:
            for item in media:
                pool.submit(_decode, item.path, sampling, q, stop, how)
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
                frame, layout = got
                states[frame.source].queued += 1
                pending.append(frame)
                if layout is not None:
                    layouts.append(layout)
                if len(pending) >= batch_size:
                    run_batch()
        finally:
            stop.set()
    return sorted(results.values(), key=lambda r: order[r.path])
