"""The Ray Data stages: decode + sample an input into frame rows (CPU), score frame rows with the run's Engine (GPU or CPU actor).

Every input's frames are followed by one `done` row carrying its frame count and what the decoder reported,
so that the driver knows when a file is complete without collecting all rows first.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..allocator import reuse_frame_buffers
from ..config import Config, with_overrides
from ..engine import Engine
from ..errors import StreamdetError, WeightsError
from ..files import write_bytes
from ..video import DecodeStats, Frame, Sampling, iter_frames

FRAME, DONE = "frame", "done"
CHUNK = 8  # frames per yielded batch: bounded memory per decode task whatever the video length


DTYPES = {
    "path": object, "row": object, "index": np.int64, "time": np.float64, "image": object, "height": np.int64,
    "width": np.int64, "frames": np.int64, "decode_s": np.float64, "error": object, "warning": object,
}


def _frame_row(frame: Frame) -> dict[str, Any]:
    image = np.ascontiguousarray(frame.image)
    return {
        "path": frame.source, "row": FRAME, "index": frame.index, "time": frame.time, "image": image.tobytes(),
        "height": image.shape[0], "width": image.shape[1], "frames": 0, "decode_s": 0.0, "error": "", "warning": "",
    }


def _rows(frames: list[Frame], done: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Frame rows (and the `done` row when given) as columns; images travel as raw bytes with their shape."""
    rows = [_frame_row(f) for f in frames]
    if done is not None:
        rows.append({"row": DONE, "index": 0, "time": 0.0, "image": b"", "height": 0, "width": 0, **done})
    columns = {}
    for name, dtype in DTYPES.items():
        values = [row[name] for row in rows]
        if dtype is object:
            columns[name] = np.empty(len(values), dtype=object)
            columns[name][:] = values
        else:
            columns[name] = np.array(values, dtype=dtype)
    return columns


def decode_inputs(batch: dict[str, np.ndarray], sampling: Sampling, max_pixels: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Decode each input of the batch exactly as the local scan does, in chunks of frames, then its `done` row."""
    reuse_frame_buffers()  # this runs in a Ray worker process, not in the CLI's
    for path in batch["path"]:
        path = str(path)
        start = time.perf_counter()
        stats = DecodeStats()
        pending: list[Frame] = []
        count, error = 0, None
        try:
            for frame in iter_frames(path, sampling, stats, 1, cores=1, max_pixels=max_pixels):  # a decode task holds one CPU
                pending.append(frame)
                count += 1
                if len(pending) >= CHUNK:
                    yield _rows(pending)
                    pending = []
        except StreamdetError as exc:
            error = str(exc)
        except Exception as exc:  # a decoder bug must not take the other files down
            error = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
        done = {"path": path, "frames": count, "decode_s": time.perf_counter() - start, "error": error or "", "warning": stats.warning() or ""}
        yield _rows(pending, done)


def materialize(name: str, data: bytes) -> Path:
    """Write shipped checkpoint bytes once per node into the temporary folder (named by the driver's digest)."""
    path = Path(tempfile.gettempdir()) / "streamdet-weights" / name
    if not path.is_file() or path.stat().st_size != len(data):
        write_bytes(path, data)
    return path


class _Row:
    """A frame row as scoring reads it: pixels, index and time."""

    def __init__(self, image: np.ndarray, index: int, time: float) -> None:
        self.image, self.index, self.time = image, index, time


class ScoreFrames:
    """A Ray Data actor: the run's Engine (the same settings as the driver's, the checkpoints the driver resolved);
    scores frame rows exactly as `scan` does (crops, methods, cascade), passes `done` rows on."""

    def __init__(self, config: Config, weights: dict[str, Any]) -> None:
        local = {key: self._local(spec) for key, spec in weights.items()}
        self.engine = Engine.load(with_overrides(config, local, flags={key: key for key in local}))

    @staticmethod
    def _local(weights: Any) -> str:
        """A checkpoint on this node: a shared path as given, or shipped bytes `(name, ObjectRef)` written locally."""
        if isinstance(weights, tuple):
            import ray

            name, ref = weights
            return str(materialize(name, ray.get(ref)))
        if not os.path.isfile(weights):
            raise WeightsError(f"{weights}: checkpoint not found on node {os.uname().nodename}; put the weights on a path every node sees, or use --ship-weights")
        return weights

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        is_frame = batch["row"] == FRAME
        scored = np.empty(len(is_frame), dtype=object)
        scored[:] = ""
        model_s = np.zeros(len(is_frame))
        chosen = np.flatnonzero(is_frame)
        if len(chosen):
            frames = [
                _Row(np.frombuffer(batch["image"][i], np.uint8).reshape(batch["height"][i], batch["width"][i], 3).copy(), int(batch["index"][i]), float(batch["time"][i]))
                for i in chosen
            ]
            start = time.perf_counter()
            results = self.engine.score_frames(frames)
            model_s[chosen] = (time.perf_counter() - start) / len(chosen)
            for i, result in zip(chosen, results):
                scored[i] = json.dumps(result.to_dict())
        out = {name: column for name, column in batch.items() if name not in ("image", "height", "width")}
        out["scored"] = scored
        out["model_s"] = model_s
        return out
