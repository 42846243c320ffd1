"""The Ray Data stages: decode, sample and prepare an input's frames into rows (CPU), score them with the run's Engine (GPU or CPU actor).

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
import torch

from ..allocator import reuse_frame_buffers
from ..config import Config, with_overrides
from ..crops import frame_spans
from ..engine import Engine
from ..engine.scoring import input_rules, prepare_on_cpu, send_prepared
from ..errors import StreamdetError, WeightsError
from ..files import write_bytes
from ..provenance import load_anchors, read_provenance
from ..video import DecodeStats, Frame, iter_frames

FRAME, DONE = "frame", "done"
CHUNK = 8  # frames per yielded batch: bounded memory per decode task whatever the video length


DTYPES = {
    "path": object, "row": object, "index": np.int64, "time": np.float64, "inputs": object,
    "layout": object, "frames": np.int64, "decode_s": np.float64, "error": object, "warning": object, "provenance": object,
}


def _rows(frames: list[Frame], config: Config, done: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Frame rows (and the `done` row when given) as columns. Each frame travels as its model inputs, prepared
    here on the CPU as the scan prepares them (its S×S crops as float32 bytes, and their layout), not whole."""
    rows = []
    if frames:
        rules = input_rules(config.method, config.cascade.lite is not None)
        x, layout = prepare_on_cpu([f.image for f in frames], config.crops, config.adm.image_size, rules)
        for frame, (start, kind, boxes) in zip(frames, frame_spans(layout, len(frames))):
            inputs = np.concatenate([x[rule][start : start + len(boxes)].numpy() for rule in rules])  # the rules' rows one after another
            rows.append({
                "path": frame.source, "row": FRAME, "index": frame.index, "time": frame.time, "inputs": inputs.tobytes(),
                "layout": "" if layout is None else json.dumps([kind, [list(b) for b in boxes]]),
                "frames": 0, "decode_s": 0.0, "error": "", "warning": "", "provenance": "",
            })
    if done is not None:
        rows.append({"row": DONE, "index": 0, "time": 0.0, "inputs": b"", "layout": "", **done})
    columns = {}
    for name, dtype in DTYPES.items():
        values = [row[name] for row in rows]
        if dtype is object:
            columns[name] = np.empty(len(values), dtype=object)
            columns[name][:] = values
        else:
            columns[name] = np.array(values, dtype=dtype)
    return columns


def decode_inputs(batch: dict[str, np.ndarray], config: Config) -> Iterator[dict[str, np.ndarray]]:
    """Decode each input of the batch exactly as the local scan does (the settings' sampling and pixel limit), in
    chunks of frames prepared for the model, then its `done` row (with the file's C2PA provenance as JSON where the
    settings read it, as the local scan reads it)."""
    reuse_frame_buffers()  # this runs in a Ray worker process, not in the CLI's
    anchors = load_anchors(config.trust_anchors) if config.provenance and config.trust_anchors else None  # once per task, not per input
    for path in batch["path"]:
        path = str(path)
        start = time.perf_counter()
        stats = DecodeStats()
        pending: list[Frame] = []
        count, error = 0, None
        try:
            for frame in iter_frames(path, config.sampling, stats, 1, cores=1, max_pixels=config.max_pixels):  # a decode task holds one CPU
                pending.append(frame)
                count += 1
                if len(pending) >= CHUNK:
                    yield _rows(pending, config)
                    pending = []
        except StreamdetError as exc:
            error = str(exc)
        except Exception as exc:  # a decoder bug must not take the other files down
            error = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
        provenance = read_provenance(path, anchors) if config.provenance else None
        done = {"path": path, "frames": count, "decode_s": time.perf_counter() - start, "error": error or "", "warning": stats.warning() or "",
                "provenance": json.dumps(provenance.to_dict()) if provenance else ""}
        yield _rows(pending, config, done)


def materialize(name: str, data: bytes) -> Path:
    """Write shipped checkpoint bytes once per node into the temporary folder (named by the driver's digest)."""
    path = Path(tempfile.gettempdir()) / "streamdet-weights" / name
    if not path.is_file() or path.stat().st_size != len(data):
        write_bytes(path, data)
    return path


def load_on_node(config: Config, weights: dict[str, Any]) -> Engine:
    """The run's Engine in a Ray worker, its checkpoints (`weights`, by setting) as this node has them."""
    local = {key: _local(spec) for key, spec in weights.items()}
    return Engine.load(with_overrides(config, local, flags={key: key for key in local}))


def _local(weights: Any) -> str:
    """A checkpoint on this node: a shared path as given, or shipped bytes `(name, ObjectRef)` written locally."""
    if isinstance(weights, tuple):
        import ray

        name, ref = weights
        return str(materialize(name, ray.get(ref)))
    if not os.path.isfile(weights):
        raise WeightsError(f"{weights}: checkpoint not found on node {os.uname().nodename}; put the weights on a path every node sees, or use --ship-weights")
    return weights


class _Row:
    """A frame row as its scores are filed: index and time (its pixels were prepared in the decode task)."""

    def __init__(self, index: int, time: float) -> None:
        self.index, self.time = index, time


class ScoreFrames:
    """A Ray Data actor: the run's Engine (the same settings as the driver's, the checkpoints the driver resolved);
    scores frame rows exactly as `scan` does (crops, methods, cascade), passes `done` rows on."""

    def __init__(self, config: Config, weights: dict[str, Any]) -> None:
        self.engine = load_on_node(config, weights)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        is_frame = batch["row"] == FRAME
        scored = np.empty(len(is_frame), dtype=object)
        scored[:] = ""
        model_s = np.zeros(len(is_frame))
        chosen = np.flatnonzero(is_frame)
        if len(chosen):
            settings = self.engine.settings
            size, rules = settings.adm.image_size, input_rules(settings.method, settings.cascade.lite is not None)
            frames = [_Row(int(batch["index"][i]), float(batch["time"][i])) for i in chosen]
            rows = [np.frombuffer(batch["inputs"][i], np.float32).reshape(len(rules), -1, 3, size, size) for i in chosen]
            x = {rule: torch.from_numpy(np.concatenate([r[k] for r in rows])) for k, rule in enumerate(rules)}
            layout = None if self.engine.settings.crops == "center" else [tuple(json.loads(batch["layout"][i])) for i in chosen]
            start = time.perf_counter()
            results = send_prepared(self.engine.scorer, frames, x, layout).collect()
            model_s[chosen] = (time.perf_counter() - start) / len(chosen)
            for i, result in zip(chosen, results):
                scored[i] = json.dumps(result.to_dict())
        out = {name: column for name, column in batch.items() if name not in ("inputs", "layout")}
        out["scored"] = scored
        out["model_s"] = model_s
        return out
