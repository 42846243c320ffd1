"""`streamdet prepare`: each image's first-step eps and DIRE, computed in batches on the device and cached.

Resumable: an image whose files exist is skipped, and every file is written atomically, so an
interrupted run leaves only complete files and a rerun does the rest. eps comes from exactly the
inference code (DistilDIRE's preprocessing + `load_noise_model`), and DIRE from exactly the code of `--method dire`
(DIRE's preprocessing, `models.dire`, guided-diffusion's DDIM) on the same UNet.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..config import Config
from ..device import autocast, pick_device, pick_precision
from ..errors import MediaError
from ..models.dire import DIRE, check_dire_steps
from ..models.noise import load_noise_model
from ..preprocess import preprocess_each
from ..weights import file_sha256, resolve
from .augment import check_ranges
from .cache import Cache
from .copies import copies_meta, make_copies, missing
from .dataset import Item, load_items, read_rgb

Progress = Callable[[int, int], None]
log = logging.getLogger("streamdet")
# How the DIRE images' frames are preprocessed, recorded in the cache: the DIRE reference's loader (older caches: DistilDIRE's resize).
DIRE_INPUT = "center_crop_arr"
# The preprocessing rule each kind of cached file is computed from.
_RULES = {"eps": "distildire", "dire": "dire"}


@dataclass
class PrepareReport:
    """What a `prepare` run did: images seen, eps, DIRE and augmented copies computed, images already done, failures, seconds."""

    images: int
    eps: int = 0
    dire: int = 0
    copies: int = 0
    done_before: int = 0
    failed: list[str] = field(default_factory=list)
    eps_s: float = 0.0
    dire_s: float = 0.0


@dataclass
class _Job:
    item: Item
    eps: bool
    dire: bool


def _read_batches(root: Path, jobs: Sequence[_Job], size: int, max_pixels: int) -> Iterator[tuple[list[_Job], list[np.ndarray], list[str]]]:
    """Batches of (jobs, images, errors), the next batch decoded in threads while the current one computes."""

    def read(job: _Job) -> np.ndarray | str:
        path = root / job.item.path
        try:
            return read_rgb(path, max_pixels)
        except MediaError as exc:
            return str(exc)
        except Exception as exc:  # one unreadable image must not stop the others
            return f"{path}: cannot read ({type(exc).__name__}: {exc})"

    chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="streamdet-prepare") as pool:
        pending = pool.map(read, chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            results = list(pending)
            if i + 1 < len(chunks):
                pending = pool.map(read, chunks[i + 1])
            good = [(job, r) for job, r in zip(chunk, results) if not isinstance(r, str)]
            yield [job for job, _ in good], [r for _, r in good], [r for r in results if isinstance(r, str)]


def cache_meta(config: Config, adm_path: Path, precision: str) -> dict:
    """What the cached eps and DIRE depend on: image size, ADM architecture, the checkpoint's content, precision, DIRE steps."""
    return {
        "image_size": config.adm.image_size,
        "adm": dataclasses.asdict(config.adm),
        "adm_sha256": file_sha256(adm_path),
        "precision": precision,
        "dire_steps": config.train.dire_steps,
        "dire_input": DIRE_INPUT,
    }


def prepare(
    dataset: str | Path,
    config: Config,
    adm: str | Path | None = None,
    cache_dir: str | Path | None = None,
    dire: bool = True,
    progress: Progress | None = None,
    on_error: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Compute and cache the eps (and, with `dire`, the DIRE) of every image of `dataset` that lacks them.

    With `train.copies` K > 0, also K augmented copies per image (`train.augment`), each with the eps of the degraded frame.
    Files made with another ADM checkpoint (by content), precision or setting are stale and made again.
    """
    if dire:
        check_dire_steps(config.train.dire_steps, config.adm.diffusion_steps)
    root = Path(dataset)
    items = load_items(root)
    cache = Cache(root, cache_dir)
    adm_path = resolve(adm or config.weights.adm)
    device = pick_device(config.device)
    precision = pick_precision(config.precision, device)
    changed = cache.claim(cache_meta(config, adm_path, precision))
    if changed:
        log.warning("%s: cache was made with another %s; computing it again", cache.dir, ", ".join(changed))
    jobs = []
    for item in items:
        job = _Job(item, not cache.eps_path(item).is_file(), dire and not cache.dire_path(item).is_file())
        if job.eps or job.dire:
            jobs.append(job)
    copy_jobs = []
    if config.train.copies:
        check_ranges(config.train.augment)
        if cache.claim_copies(copies_meta(config)):
            log.warning("%s: augmented copies were made with other train.augment settings or seed; making them again", cache.dir)
        copy_jobs = missing(items, cache, config.train.copies)
    report = PrepareReport(images=len(items), done_before=len(items) - len(jobs))
    if not jobs and not copy_jobs:
        return report
    total = len(jobs) + sum(len(clip) for _, clip in copy_jobs)
    noise = load_noise_model(config.adm, adm_path).to(device).eval().requires_grad_(False)
    dire_model = DIRE(noise.unet, config.adm, config.train.dire_steps).to(device)
    done = 0
    for batch_jobs, images, errors in _read_batches(root, jobs, config.batch, config.max_pixels):
        for message in errors:
            report.failed.append(message)
            if on_error is not None:
                on_error(message)
        if images:
            x = preprocess_each(images, config.adm.image_size, {_RULES[k] for k in _RULES if any(getattr(j, k) for j in batch_jobs)}, device)
            with torch.inference_mode():
                with autocast(device, precision):
                    report.eps_s += _run(x, batch_jobs, "eps", noise, cache.save_eps)
                report.dire_s += _run(x, batch_jobs, "dire", dire_model, cache.save_dire)  # in fp32, as --method dire runs it
            report.eps += sum(job.eps for job in batch_jobs)
            report.dire += sum(job.dire for job in batch_jobs)
        done += len(batch_jobs) + len(errors)
        if progress is not None:
            progress(done, total)

    def read_clip(clip: Sequence[Item]) -> list[np.ndarray] | None:
        try:
            return [read_rgb(root / item.path, config.max_pixels) for item in clip]
        except Exception as exc:  # one unreadable image must not stop the others
            message = str(exc) if isinstance(exc, MediaError) else f"{root / clip[0].path}: cannot read ({type(exc).__name__}: {exc})"
            if message not in report.failed:
                report.failed.append(message)
                if on_error is not None:
                    on_error(message)
            return None

    def copied(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    report.copies = make_copies(copy_jobs, read_clip, cache, config, noise, device, precision, copied)
    return report


def _run(x: dict[str, torch.Tensor], jobs: list[_Job], kind: str, model: Callable[[torch.Tensor], torch.Tensor], save: Callable[[Item, torch.Tensor], None]) -> float:
    """Compute `kind` for the frames whose job asks for it (from their tensor of that kind's rule), save each result,
    and return the seconds spent."""
    rows = [i for i, job in enumerate(jobs) if getattr(job, kind)]
    if not rows:
        return 0.0
    start_time = time.perf_counter()
    out = model(x[_RULES[kind]][rows]).cpu()
    elapsed = time.perf_counter() - start_time
    for row, result in zip(rows, out):
        save(jobs[row].item, result)
    return elapsed
