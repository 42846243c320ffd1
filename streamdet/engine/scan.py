"""The concurrent scan: decoder threads → bounded queue → batched detector → per-file results.

Batches are double-buffered: a batch is sent to the device and the batch before it is read back only
then, so on a GPU the host gathers and uploads the next frames while the current ones compute.

Decoding runs in a pool of threads (PyAV releases the GIL) while the detector computes: files in
parallel, and the GOPs of a file in parallel when there are more cores than files. Frames of several
files share batches, and every frame keeps its source, index and time so scores are never matched up by
position. The queue holds at most a batch of frames, so memory does not grow with video length.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..crops import FaceFinder, crop_boxes
from ..errors import ConfigError, StreamdetError
from ..provenance import Provenance, load_anchors, read_provenance
from ..results import FileResult, FrameScore
from ..video import DecodeStats, Frame, Sampling, expand_inputs, iter_frames
from ..video.nvdec import iter_frames_nvdec, resolve_decoder
from ..video.parallel import put_unless_stopped, workers_available
from .scoring import InFlight, check_crops, send

if TYPE_CHECKING:
    from ..config import Config
    from .scoring import Scorer


@dataclass
class _Done:
    """End-of-file marker a decoder thread puts after the file's last frame."""

    path: str
    error: str | None
    decode_s: float
    warning: str | None = None
    provenance: Provenance | None = None
    duration: float | None = None


@dataclass
class _FileState:
    result: FileResult
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
    max_pixels: int | None = None  # larger pictures are refused before decoding (the settings' max_pixels)
    provenance: bool = False  # read each file's C2PA manifest in its decode thread
    anchors: str | None = None


def _frames(path: str, sampling: Sampling, stats: DecodeStats, how: _Decoding) -> Iterator[Frame]:
    """The input's sampled frames from NVDEC where asked and possible, else from the CPU decoder."""
    frames = None
    if how.nvdec is not None:
        frames = iter_frames_nvdec(path, sampling, how.device, stats, strict=how.nvdec == "nvdec")
    return frames if frames is not None else iter_frames(path, sampling, stats, how.workers, how.planes, cores=how.workers, max_pixels=how.max_pixels)


def _decode(path: str, sampling: Sampling, q: queue.Queue, stop: threading.Event, how: _Decoding) -> None:
    """Decode one input onto the queue as (frame, its crop layout or None), then its end marker with any error and what the decoder lost."""
    start = time.perf_counter()
    waited = 0.0  # time blocked on the full queue: the device's time, not this input's decoding
    error = None
    stats = DecodeStats()
    provenance = read_provenance(path, how.anchors) if how.provenance else None
    try:
        for frame in _frames(path, sampling, stats, how):
            layout = None if how.crops == "center" else crop_boxes(frame.image, how.crops, how.faces)
            offered = time.perf_counter()
            if not put_unless_stopped(q, (frame, layout), stop):
                return
            waited += time.perf_counter() - offered
    except StreamdetError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder bug must not take the other files down
        error = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
    put_unless_stopped(q, _Done(path, error, time.perf_counter() - start - waited, stats.warning(), provenance, stats.duration), stop)


Conclude = Callable[[FileResult, "str | None", "str | None"], FileResult]


def _finish(state: _FileState, conclude: Conclude) -> FileResult:
    """Aggregate a file whose frames are all scored, with its own decode and model time (not its wait in the queue)."""
    done = state.done
    state.result.timings = {
        "decode_s": round(done.decode_s, 4),
        "model_s": round(state.model_s, 4),
        "total_s": round(done.decode_s + state.model_s, 4),
    }
    state.result.provenance = done.provenance
    state.result.duration = done.duration
    return conclude(state.result, done.error, done.warning)


def scan(
    scorer: "Scorer",
    settings: "Config",
    conclude: Conclude,
    paths: Sequence[str | os.PathLike],
    on_result: Callable[[FileResult], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
    on_scored: Callable[[Frame, FrameScore], None] | None = None,
    planes: bool | None = None,
) -> list[FileResult]:
    """Scan videos, images and folders with `scorer` and the run's `settings`, each file given its verdict by
    `conclude` (the engine's); one result per input file, in input order, errors included.

    `on_result` sees each result when its file is done, `on_frames` the size of each scored batch and `on_scored`
    each frame with its score. `planes` sends 4:2:0 frames to the device as YUV planes, converted to RGB there
    (default: on CUDA only, where it saves the CPU's rgb24 conversion and halves the bytes copied).
    """
    crops = check_crops(settings.crops)
    decoder = settings.decoder
    if crops == "faces":  # faces are found in RGB frames on the CPU
        scorer.faces.check()
        if planes or decoder == "nvdec":
            raise ConfigError("--crops faces finds faces in RGB frames on the CPU: it cannot take YUV planes or --decoder nvdec (use cpu or auto)")
        planes, decoder = False, "cpu"
    planes = scorer.device.type == "cuda" if planes is None else planes
    nvdec = decoder if resolve_decoder(decoder, scorer.device) == "nvdec" else None
    sampling = settings.sampling
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
    states = {item.path: _FileState(FileResult(item.path, item.kind)) for item in media}
    batch_size = scorer.batch.size
    q: queue.Queue = queue.Queue(maxsize=max(2, batch_size))
    stop = threading.Event()
    pending: list[tuple[Frame, list | None]] = []  # each frame with its crop layout (None for the center rule)
    in_flight: list[tuple[InFlight, float]] = []

    def run_batch() -> None:
        """Send the pending frames to the device, then read back the batch sent before (computed meanwhile)."""
        started = time.perf_counter()
        layouts = [layout for _, layout in pending] if crops != "center" else None
        in_flight.append((send(scorer, [frame for frame, _ in pending], crops, layouts), started))
        pending.clear()
        if len(in_flight) > 1:
            collect()

    def collect() -> None:
        """Read back the oldest batch in flight and file its scores under their frames."""
        batch, started = in_flight.pop(0)
        scored = batch.collect()
        share = (time.perf_counter() - started) / len(batch.frames)
        for frame, score in zip(batch.frames, scored):
            state = states[frame.source]
            state.result.frames.append(score)
            state.model_s += share
            if on_scored is not None:
                on_scored(frame, score)
        if on_frames is not None:
            on_frames(len(batch.frames))
        finish_ready()

    def finish_ready() -> None:
        for path, state in list(states.items()):
            if state.done is not None and len(state.result.frames) == state.queued:
                emit(_finish(states.pop(path), conclude))

    cores = workers_available()
    n_workers = settings.decode_workers or min(cores, max(1, len(media)))
    anchors = load_anchors(settings.trust_anchors) if settings.trust_anchors else None
    how = _Decoding(max(1, cores // n_workers), planes, nvdec, scorer.device, crops, scorer.faces, settings.max_pixels, settings.provenance, anchors)
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
                pending.append((frame, layout))
                if len(pending) >= batch_size:
                    run_batch()
        finally:
            stop.set()
    return sorted(results.values(), key=lambda r: order[r.path])
