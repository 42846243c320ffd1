"""`streamdet train`: the 6-channel student from scratch, distilled from the frozen ImageNet teacher reading DIRE.

loss = BCEWithLogits(logit, y) + λ · MSE(student features, teacher features of DIRE)  (λ = `kd_weight`;
BCE only with `kd: false`). Adam with a cosine schedule per epoch; mixed precision on CUDA; one process
or many under torchrun (DDP). Each epoch writes `last.pth` atomically, and `best.pth` by validation AP (ties: lower validation loss).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from ..config import Config, TrainConfig
from ..errors import ConfigError
from ..device import autocast
from ..models.student import Student, build_teacher
from . import checkpoint
from .augment import Augment
from .cache import Cache
from .dataset import load_items, train_val
from .logbook import Logbook
from .metrics import measure
from .predict import predict
from .placement import Runtime, start, stop
from .copies import copies_meta
from .samples import Samples, check_copies, with_caches

log = logging.getLogger("streamdet")

StepCallback = Callable[[int, int, int, float], None]
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """Where a run's checkpoints are and what each of its epochs measured."""

    out: Path
    main: bool = True
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> Path:
        """The checkpoint of the last completed epoch."""
        return self.out / checkpoint.LAST

    @property
    def best(self) -> Path:
        """The checkpoint of the epoch with the best validation AP (absent without a validation split)."""
        return self.out / checkpoint.BEST


class _WithFeatures(nn.Module):
    """The student's forward returning (logits, features), so DDP sees the one forward that training runs."""

    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.student.forward_features(x, eps)


def train(
    dataset: str | Path,
    config: Config,
    out: str | Path,
    cache_dir: str | Path | None = None,
    resume: bool = False,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train a student on a prepared dataset into the run folder `out` (continue its `last.pth` with `resume`)."""
    out = Path(out)
    state = None
    if resume:
        path = out / checkpoint.LAST
        if not path.is_file():
            raise ConfigError(f"{path}: no checkpoint to resume from")
        state = checkpoint.load(path)
        config = _resumed_config(config, state)
    elif (out / checkpoint.LAST).exists():
        raise ConfigError(f"{out}: already holds a run (last.pth); pass --resume to continue it, or choose another --out")
    runtime = start(config.device, config.train.precision)
    try:
        return _Training(Path(dataset), config, out, Cache(dataset, cache_dir), runtime, state).run(on_step, on_epoch)
    finally:
        stop(runtime)


def _resumed_config(config: Config, state: dict[str, Any]) -> Config:
    """The run's own training settings (saved in its checkpoint) win over those given now, with a warning per difference."""
    saved = TrainConfig(**state["config"]["train"])
    for key, value in dataclasses.asdict(config.train).items():
        if getattr(saved, key) != value and value != getattr(TrainConfig(), key):
            log.warning("resuming: train.%s stays %r as saved in the run (not %r)", key, getattr(saved, key), value)
    return dataclasses.replace(config, train=saved)


class _Training:
    """One training run: data, models, optimiser, and the epoch loop."""

    def __init__(self, root: Path, config: Config, out: Path, cache: Cache, runtime: Runtime, state: dict[str, Any] | None) -> None:
        self.config, self.cfg, self.out, self.runtime = config, config.train, out, runtime
        self.device = runtime.device
        cfg = self.cfg
        size = config.adm.image_size
        cache.check_size(size)
        train_items, val_items = train_val(load_items(root), cfg.val_fraction, cfg.seed)
        train_items = with_caches(train_items, cache, cfg.kd, "training")
        val_items = with_caches(val_items, cache, False, "validation")
        if not val_items:
            log.warning("no validation images: best.pth is not written (raise train.val_fraction)")
        augment = Augment(cfg.flip_prob, cfg.jpeg_prob, cfg.jpeg_min_quality, cfg.jpeg_max_quality)
        check_copies(train_items, cache, cfg.copies, copies_meta(config))
        self.train_set = Samples(root, train_items, cache, size, dire=cfg.kd, augment=augment, seed=cfg.seed, copies=cfg.copies)
        self.val_set = Samples(root, val_items, cache, size)
        self.sampler = DistributedSampler(self.train_set, num_replicas=runtime.world, rank=runtime.rank, shuffle=True, seed=cfg.seed)
        cuda = self.device.type == "cuda"
        self.loader = DataLoader(self.train_set, batch_size=cfg.batch, sampler=self.sampler, num_workers=cfg.workers, pin_memory=cuda)

        torch.manual_seed(cfg.seed)
        self.student = Student().to(self.device)
        self.channels_last = cuda and config.channels_last
        if self.channels_last:
            self.student.to(memory_format=torch.channels_last)
        model: nn.Module = _WithFeatures(self.student)
        if runtime.distributed:
            model = DistributedDataParallel(model, device_ids=[self.device.index] if cuda else None)
        self.model = model
        self.teacher = build_teacher(cfg.teacher or None).to(self.device) if cfg.kd else None
        if self.teacher is not None and self.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=runtime.precision == "fp16")
        self.epoch, self.step, self.best_ap, self.best_loss = 0, 0, -math.inf, math.inf
        if state is not None:
            self._restore(state)
        last_record = state.get("metrics") if state is not None else None
        self.logbook = Logbook(out, keep_through_epoch=self.epoch, last=last_record) if runtime.main else None
        self.meta = {"dataset": str(root), "cache": str(cache.dir), "image_size": size, "world": runtime.world, "train_images": len(train_items), "val_images": len(val_items)}

    def _restore(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_ap = float(state.get("best_ap", -math.inf))
        self.best_loss = float(state.get("best_loss", math.inf))
        checkpoint.restore_rng(state["rng"], self.device)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def run(self, on_step: StepCallback | None, on_epoch: EpochCallback | None) -> TrainResult:
        """Train the remaining epochs."""
        result = TrainResult(self.out, main=self.runtime.main)
        try:
            while self.epoch < self.cfg.epochs:
                record = self._epoch(on_step)
                result.epochs.append(record)
                if on_epoch is not None and self.runtime.main:
                    on_epoch(record)
        finally:
            if self.logbook is not None:
                self.logbook.close()
        return result

    def _epoch(self, on_step: StepCallback | None) -> dict[str, Any]:
        epoch, cfg = self.epoch, self.cfg
        self.sampler.set_epoch(epoch)
        self.train_set.epoch = epoch
        self.model.train()
        totals = torch.zeros(4, dtype=torch.float64)  # loss, bce, kd (sums over samples), samples
        started = time.perf_counter()
        for batch_index, batch in enumerate(self.loader):
            loss, bce, kd = self._train_step(batch)
            n = len(batch["label"])
            totals += torch.tensor([loss * n, bce * n, kd * n, n], dtype=torch.float64)
            self.step += 1
            if on_step is not None and self.runtime.main:
                on_step(epoch, batch_index + 1, len(self.loader), loss)
        train_s = time.perf_counter() - started
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        totals = sum(self.runtime.gather(totals))
        seen = max(float(totals[3]), 1.0)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": lr,
            "train_loss": float(totals[0]) / seen,
            "train_bce": float(totals[1]) / seen,
            "train_kd": float(totals[2]) / seen if cfg.kd else None,
            "train_images_per_s": float(totals[3]) / train_s,
        }
        record.update(self._validate())
        self.epoch = epoch + 1
        is_best = record.get("val_ap") is not None and (record["val_ap"], -record["val_loss"]) > (self.best_ap, -self.best_loss)
        if is_best:
            self.best_ap, self.best_loss = record["val_ap"], record["val_loss"]
        if self.runtime.main:  # the checkpoint first: a metrics line never names an epoch whose last.pth is not in place
            checkpoint.save(self.out, self._checkpoint(record), best=is_best)
            self.logbook.write(record)
        self.runtime.barrier()
        return record

    def _train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, float, float]:
        x, eps = self._layout(batch["x"]), self._layout(batch["eps"])
        y = batch["label"].to(self.device, torch.float32)
        with autocast(self.device, self.runtime.precision):
            logits, features = self.model(x, eps)
            bce = F.binary_cross_entropy_with_logits(logits.float(), y)
            kd = torch.zeros((), device=self.device)
            if self.teacher is not None:
                with torch.no_grad():
                    target = self.teacher(self._layout(batch["dire"]))
                kd = F.mse_loss(features.float(), target.float())
            loss = bce + self.cfg.kd_weight * kd if self.teacher is not None else bce
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item(), bce.item(), kd.item()

    def _validate(self) -> dict[str, Any]:
        if len(self.val_set) == 0:
            return {}
        self.runtime.sync_buffers(self.student)
        self.student.eval()
        logits = predict(self.student, self.val_set, self.runtime, self.cfg.batch, self.cfg.workers)
        labels = [item.label for item in self.val_set.items]
        loss = F.binary_cross_entropy_with_logits(logits, torch.tensor(labels, dtype=torch.float32)).item()
        metrics = measure(labels, torch.sigmoid(logits).tolist(), self.config.threshold).to_dict()
        return {"val_loss": loss, "val_acc": metrics["acc"], "val_ap": metrics["ap"]}

    def _checkpoint(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_ap": self.best_ap,
            "best_loss": self.best_loss,
            "rng": checkpoint.rng_state(self.device),
            "config": {"train": dataclasses.asdict(self.cfg), **self.meta},
            "metrics": record,
        }
