"""`streamdet compress quantize LITE.pth`: the lite detector with LSQ quantizers, fine-tuned against its full-precision self.

The same plan, quantizers, fine-tune and packed storage as a student's (`quantize`, `finetune`); the lite model reads
frames only, so no eps cache is needed: any folder `distill-lite` takes will do. The fine-tune imitates the original's
P alone (no label term): the cascade's triage score was chosen against that P, so the quantized model should keep it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..config import Config
from ..errors import ConfigError
from ..models import compressed
from ..models.lite import LiteDetector, lite_checkpoint, lite_meta, load_lite
from ..preprocess import preprocess
from ..train.lite import lite_frames
from ..train.metrics import measure
from ..train.writers import save_torch
from ..weights import file_sha256, load_checkpoint
from . import quantize
from .finetune import Fidelity, distill, scores
from .job import CompressResult, Settings, Side, finetune_record, stored_bytes, validate
from .measure import cost


def is_lite_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a file holding a lite detector (from `distill-lite`), rather than a student."""
    return Path(path).is_file() and lite_meta(load_checkpoint(path)) is not None


def frame_inputs(sample: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    """What the lite detector reads from a batch: the frames alone."""
    return (sample["x"],)


def _samples(frames: list[tuple[np.ndarray, int]], size: int) -> list[dict[str, Any]]:
    """Frames preprocessed as the cascade does, each with its label (−1 where unknown)."""
    return [{"x": preprocess([image], size)[0], "label": label} for image, label in frames]


def _side(model: LiteDetector, size: int, state_bytes: int, labels: list[int], probs: list[float], threshold: float) -> Side:
    known = [(y, p) for y, p in zip(labels, probs) if y >= 0]
    return Side(cost(model, size, inputs=1), state_bytes, measure([y for y, _ in known], [p for _, p in known], threshold))


def quantize_lite(
    path: str | Path,
    dataset: str | Path,
    config: Config,
    out: str | Path,
    settings: Settings,
    on_step: Callable[[int, float], None] | None = None,
) -> CompressResult:
    """LSQ-quantize the lite detector at `path`, fine-tune it on `dataset`'s frames against the original, save to `out`."""
    validate("quantize", settings)
    path, out = Path(path), Path(out)
    if out.exists() and out.resolve() == path.resolve():
        raise ConfigError(f"{out}: is the input lite detector; choose another --out")
    reference, meta = load_lite(path)
    if compressed.KEY in meta:
        raise ConfigError(f"{path}: is already quantized; quantize the full-precision lite detector instead")
    size = int(meta["image_size"])
    train, val = lite_frames(Path(dataset), config, config.train.seed)
    train_set = _samples(train, size)
    val_set = _samples(val, size) if val else train_set

    torch.manual_seed(config.train.seed)
    labels, before = scores(reference, val_set, settings.batch, frame_inputs)
    model = copy.deepcopy(reference)
    calibration = torch.stack([s["x"] for s in train_set[: settings.batch]])
    layout, inputs = quantize.plan(model, settings.bits, settings.edge_bits, (calibration,))
    start = quantize.initialise(model, layout, inputs, lambda m: Fidelity.between(before, scores(m, val_set, settings.batch, frame_inputs)[1]))
    tuned = distill(model, reference, train_set, settings.steps, settings.batch, settings.lr, config.train.seed, val_set, on_step, frame_inputs, check_every=settings.check_every)
    _, after = scores(model, val_set, settings.batch, frame_inputs)
    step: dict[str, Any] = {
        "method": "quantize", "scheme": "LSQ, weights per output channel, activations per tensor", "bits": settings.bits, "edge_bits": settings.edge_bits, "init": start,
        "finetune": finetune_record(settings, tuned, "BCE(original lite P)", len(train_set)),
        "source": {"path": str(path), "sha256": file_sha256(path)},
        "val_images": len(val_set),
        "fidelity": dataclasses.asdict(Fidelity.between(before, after)),
        "evaluated_on": "val" if val else "train (the dataset has no val split)",
    }
    block = {"format": compressed.FORMAT, "steps": [step], "bits": layout}
    model.adapter = None  # the distillation adapter: training only, the detector never runs it (4.2 MB of fp32 in a resnet18's file)
    save_torch(out, lite_checkpoint(model, {k: v for k, v in meta.items() if k not in ("format", "backbone")}, block))
    threshold = config.threshold
    return CompressResult(
        out=out,
        step=step,
        original=_side(reference, size, stored_bytes(reference.state_dict()), labels, before, threshold),
        compressed=_side(model, size, out.stat().st_size, labels, after, threshold),
        fidelity=Fidelity.between(before, after),
        tuned=tuned,
    )
