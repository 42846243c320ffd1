"""`streamdet distill-lite`: train the ADM-free lite detector to imitate the full pipeline (scores and features).

The full pipeline (ADM first-step noise + student) scores each frame once; the lite network then learns its
logits (MSE), its student features through a 1×1 adapter (MSE, normalised by their variance) and, where the
dataset has real/ and fake/ labels, the labels (BCE). The targets are held in memory in fp16.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..detector import Detector
from ..errors import DatasetError, MediaError
from ..models.lite import LiteDetector, lite_checkpoint
from ..models.noise import load_noise_model
from ..models.student import load_student
from ..video import Sampling, expand_inputs, iter_frames
from ..weights import resolve
from .dataset import LABELS, load_items, read_rgb, train_val
from .writers import save_torch

log = logging.getLogger("streamdet")


@dataclass
class LiteResult:
    """What distill-lite did: frames used, its final loss, and how well it imitates the full pipeline on held-out frames."""

    path: Path
    frames: int
    val_frames: int
    loss: float
    mean_abs_dp: float
    agreement: float


@dataclass
class Targets:
    """Preprocessed frames with the full pipeline's logits and student features (and labels, −1 where unknown)."""

    x: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor


def lite_frames(dataset: Path, config: Config, seed: int) -> tuple[list[tuple[np.ndarray, int]], list[tuple[np.ndarray, int]]]:
    """(train, val) frames with labels: a real/ fake/ dataset is split by video as `train` splits it; any
    other folder of images and videos gives unlabelled frames (−1) sampled as the config says, all for training."""
    if any((dataset / name).is_dir() for name in LABELS):
        train, val = train_val(load_items(dataset), config.train.val_fraction, seed)
        return [(read_rgb(dataset / i.path), i.label) for i in train], [(read_rgb(dataset / i.path), i.label) for i in val]
    if not dataset.is_dir():
        raise DatasetError(f"{dataset}: no such folder of frames, images or videos")
    sampling = Sampling(**dataclasses.asdict(config.sampling))
    frames = []
    for item in expand_inputs([dataset]):
        try:
            frames.extend((frame.image, -1) for frame in iter_frames(item.path, sampling))
        except MediaError as exc:
            log.warning("distill-lite: skipping %s", exc)
    return frames, []


@torch.inference_mode()
def teacher_targets(detector: Detector, images: list[tuple[np.ndarray, int]], batch: int) -> Targets:
    """Run the full pipeline once over `images`: its logits and the student's features are the lite targets."""
    xs, logits, features = [], [], []
    student = detector.backend.student
    for start in range(0, len(images), batch):
        x = detector.preprocess([image for image, _ in images[start : start + batch]])
        logit, feature = student.forward_features(x, detector.noise(x))
        xs.append(x.cpu().half())
        logits.append(logit.float().cpu())
        features.append(feature.cpu().half())
    labels = torch.tensor([label for _, label in images], dtype=torch.float32)
    return Targets(torch.cat(xs), torch.cat(logits), torch.cat(features), labels)


def _loss(model: LiteDetector, t: Targets, idx: torch.Tensor, feature_scale: float, kd_weight: float, device: torch.device) -> torch.Tensor:
    x = t.x[idx].to(device).float()
    logit, feature = model.forward_features(x)
    loss = nn.functional.mse_loss(logit, t.logits[idx].to(device))
    loss = loss + kd_weight * nn.functional.mse_loss(feature, t.features[idx].to(device).float()) / feature_scale
    labels = t.labels[idx].to(device)
    known = labels >= 0
    if known.any():
        loss = loss + nn.functional.binary_cross_entropy_with_logits(logit[known], labels[known])
    return loss


@torch.inference_mode()
def imitation(model: LiteDetector, t: Targets, threshold: float, device: torch.device) -> tuple[float, float]:
    """Mean |P_lite − P_full| and the share of frames on the same side of `threshold`."""
    p_lite = torch.sigmoid(model.eval()(t.x.to(device).float())).cpu()
    p_full = torch.sigmoid(t.logits)
    return float((p_lite - p_full).abs().mean()), float(((p_lite >= threshold) == (p_full >= threshold)).float().mean())


def distill_lite(
    dataset: str | Path,
    config: Config,
    teacher_student: str | Path,
    out: str | Path,
    backbone: str = "resnet18",
    on_epoch: Callable[[int, float], None] | None = None,
) -> LiteResult:
    """Train a lite detector on `dataset` against the full pipeline of the settings' ADM + `teacher_student`; save it
    to `out`. Epochs, batch, learning rate and the feature-imitation weight are the settings' `train:` values."""
    dataset, out = Path(dataset), Path(out)
    train_cfg = config.train
    seed = train_cfg.seed
    model = LiteDetector(backbone)  # an unknown backbone fails here, before the ADM runs
    train, val = lite_frames(dataset, config, seed)
    if not train:
        raise DatasetError(f"{dataset}: no frame could be read to distill from")
    noise = load_noise_model(config.adm, resolve(config.weights.adm))
    full = Detector.from_models(noise, load_student(resolve(teacher_student)), config)
    device = full.device
    t_train = teacher_targets(full, train, config.batch)
    t_val = teacher_targets(full, val, config.batch) if val else t_train
    del full, noise
    torch.manual_seed(seed)
    model = LiteDetector(backbone).to(device)
    feature_scale = float(t_train.features.float().var()) + 1e-8
    kd = train_cfg.kd_weight
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    rng = random.Random(seed)
    n = len(t_train.logits)
    loss_value = float("nan")
    for epoch in range(train_cfg.epochs):
        model.train()
        order = list(range(n))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, n, train_cfg.batch):
            idx = torch.tensor(order[start : start + train_cfg.batch])
            loss = _loss(model, t_train, idx, feature_scale, kd, device)
            if not torch.isfinite(loss):
                raise DatasetError(f"{dataset}: the distillation loss became {loss.item()} in epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        loss_value = total / n
        if on_epoch is not None:
            on_epoch(epoch, loss_value)
    mean_dp, agreement = imitation(model, t_val, config.threshold, device)
    meta = {
        "image_size": config.adm.image_size,
        "teacher_student": str(teacher_student),
        "adm": str(config.weights.adm),
        "dataset": str(dataset),
        "frames": n,
        "val_frames": len(val),
        "epochs": train_cfg.epochs,
        "loss": loss_value,
        "mean_abs_dp": mean_dp,
        "agreement": agreement,
    }
    save_torch(out, lite_checkpoint(model.cpu(), meta))
    return LiteResult(out, n, len(val), loss_value, mean_dp, agreement)
