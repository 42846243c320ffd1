"""`streamdet compress`: load a student, compress it one way, fine-tune it against the original, check and save it."""

from __future__ import annotations

import copy
import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import Config
from ..errors import ConfigError
from ..models import compressed
from ..models.student import load_student
from ..train.cache import Cache
from ..train.dataset import load_items, train_val
from ..train.metrics import Metrics, measure
from ..train.samples import Samples, with_caches
from ..train.writers import save_torch
from ..weights import file_sha256, load_checkpoint, resolve
from . import prune, quantize, svd
from .finetune import CHECK_EVERY, Fidelity, Tuned, distill, scores
from .measure import Cost, cost

METHODS = ("prune", "svd", "quantize")


@dataclass
class Settings:
    """What to do: the method's own knobs and the fine-tune's."""

    ratio: float = 0.25
    target: str = "flops"
    sparsity: float | None = None
    energy: float | None = None
    flops: float | None = None
    bits: int = 4
    edge_bits: int = 8
    steps: int = 50
    batch: int = 8
    lr: float = 1e-6
    labels: bool = False
    check_every: int = CHECK_EVERY


@dataclass
class Side:
    """One student's figures: cost per frame, stored bytes, Acc/AP on the evaluation images."""

    cost: Cost
    stored_bytes: int
    metrics: Metrics


@dataclass
class CompressResult:
    """Where the compressed student went, what was done, the figures of both students, and |ΔP| between them on the held-out frames."""

    out: Path
    step: dict[str, Any]
    original: Side
    compressed: Side
    fidelity: Fidelity
    tuned: Tuned = field(default_factory=Tuned)


def stored_bytes(state: dict[str, torch.Tensor]) -> int:
    """Size of a state dict as `torch.save` writes it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def validate(method: str, settings: Settings) -> None:
    """Refuse bad settings before any model or image is read."""
    if method not in METHODS:
        raise ConfigError(f"compress method {method!r}: must be one of {', '.join(METHODS)}")
    if method == "prune" and settings.sparsity is None and (settings.target not in prune.TARGETS or not 0.0 < settings.ratio < 1.0):
        raise ConfigError(f"prune --ratio {settings.ratio} --target {settings.target}: the ratio must be in (0, 1), the target flops or params")
    if method == "prune" and settings.sparsity is not None and not 0.0 < settings.sparsity < 1.0:
        raise ConfigError(f"prune --sparsity {settings.sparsity}: must be in (0, 1)")
    if method == "svd" and (settings.energy is None) == (settings.flops is None):
        raise ConfigError("svd: give exactly one of --energy (share of Σσ² kept) and --flops (share of FLOPs kept)")
    if method == "quantize" and (settings.bits not in quantize.BITS or settings.edge_bits not in quantize.BITS):
        raise ConfigError(f"quantize --bits {settings.bits} --edge-bits {settings.edge_bits}: each must be one of {', '.join(map(str, quantize.BITS))}")


def finetune_record(settings: Settings, tuned: Tuned, loss: str, images: int) -> dict[str, Any]:
    """The fine-tune as the checkpoint's metadata records it: settings, the held-out checks, the step whose state was kept."""
    return {
        "steps": settings.steps, "batch": settings.batch, "lr": settings.lr, "loss": loss, "images": images,
        "ran": len(tuned.losses), "kept_step": tuned.kept, "checks": [[n, round(v, 6)] for n, v in tuned.checks],
        "selected_by": "held-out loss" if settings.labels else "held-out mean |ΔP| against the original",
    }


def _previous(path: Path) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)
    meta = checkpoint.get(compressed.KEY) if isinstance(checkpoint, dict) else None
    return copy.deepcopy(meta) if meta else {"format": compressed.FORMAT, "steps": []}


def _refuse(method: str, meta: dict[str, Any], path: Path) -> None:
    """Combinations the loader cannot redo in order: structure changes after SVD/quantization, anything on sparse weights."""
    if meta.get("bits"):
        raise ConfigError(f"{path}: is already quantized; compress the full-precision student instead")
    if meta.get("sparse"):
        raise ConfigError(f"{path}: is magnitude-pruned (sparse storage); {method} starts from a dense student")
    if meta.get("ranks") and method in ("prune", "svd"):
        raise ConfigError(f"{path}: is already SVD-factorised; prune before svd, and factorise once ({method} the student it came from)")


def compress(
    method: str,
    student: str | Path,
    dataset: str | Path,
    config: Config,
    out: str | Path,
    settings: Settings,
    cache_dir: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> CompressResult:
    """Compress `student` by `method`, fine-tune on the dataset's train split, compare on its val split, save to `out`."""
    validate(method, settings)
    out, root = Path(out), Path(dataset)
    path = resolve(student)
    if out.exists() and out.resolve() == path.resolve():
        raise ConfigError(f"{out}: is the input student; choose another --out")
    meta = _previous(path)
    _refuse(method, meta, path)
    size = config.adm.image_size
    cache = Cache(root, cache_dir)
    cache.check_size(size)
    train_items, val_items = train_val(load_items(root), config.train.val_fraction, config.train.seed)
    train_set = Samples(root, with_caches(train_items, cache, False, "training"), cache, size)
    val_set = Samples(root, with_caches(val_items, cache, False, "validation"), cache, size) if val_items else train_set

    torch.manual_seed(config.train.seed)
    reference = load_student(path)
    labels, before = scores(reference, val_set, settings.batch)
    model = copy.deepcopy(reference)
    masks: dict[str, torch.Tensor] = {}
    if method == "prune" and settings.sparsity is not None:
        masks = prune.magnitude_masks(model, settings.sparsity)
        prune.apply_masks(model, masks)
        step: dict[str, Any] = {"method": "prune", "kind": "unstructured", "criterion": "global weight magnitude", "sparsity": settings.sparsity}
        meta["sparse"] = sorted(masks)
    elif method == "prune":
        step = {"method": "prune", "kind": "structured", **prune.prune_channels(model, size, settings.ratio, settings.target)}
        meta["channels"] = compressed.channel_sizes(model)
    elif method == "svd":
        ranks, energy = svd.plan(model, size, settings.energy, settings.flops)
        svd.factorise(model, ranks)
        step = {"method": "svd", **svd.summary(ranks, energy, settings.flops)}
        meta["ranks"] = ranks
    else:
        calibration = next(iter(torch.utils.data.DataLoader(train_set, batch_size=settings.batch)))
        layout, inputs = quantize.plan(model, settings.bits, settings.edge_bits, (calibration["x"], calibration["eps"]))
        start = quantize.initialise(model, layout, inputs, lambda m: Fidelity.between(before, scores(m, val_set, settings.batch)[1]))
        step = {"method": "quantize", "scheme": "LSQ, weights per output channel, activations per tensor", "bits": settings.bits, "edge_bits": settings.edge_bits, "init": start}
        meta["bits"] = layout

    def after_step(number: int, loss: float) -> None:
        prune.apply_masks(model, masks)
        if on_step is not None:
            on_step(number, loss)

    tuned = distill(model, reference, train_set, settings.steps, settings.batch, settings.lr, config.train.seed, val_set, after_step, labels=settings.labels, check_every=settings.check_every)
    _, after = scores(model, val_set, settings.batch)
    step["finetune"] = finetune_record(settings, tuned, "BCE(labels) + BCE(original student's P)" if settings.labels else "BCE(original student's P)", len(train_set))
    step["source"] = {"path": str(path), "sha256": file_sha256(path)}
    step["val_images"] = len(val_set)
    step["fidelity"] = dataclasses.asdict(Fidelity.between(before, after))  # |ΔP| against the original on those images
    step["evaluated_on"] = "val" if val_items else "train (the dataset has no val split)"
    meta["steps"].append(step)

    state = compressed.encode_state(model, meta)
    reference_state = reference.state_dict()
    save_torch(out, {"model": state, compressed.KEY: meta})
    threshold = config.threshold
    return CompressResult(
        out=out,
        step=step,
        original=Side(cost(reference, size), stored_bytes(reference_state), measure(labels, before, threshold)),
        compressed=Side(cost(model, size), out.stat().st_size, measure(labels, after, threshold)),
        fidelity=Fidelity.between(before, after),
        tuned=tuned,
    )
