"""The re-encode benchmark shared by `tests/test_augment_effect.py` and `benchmarks/bench_augment_effect.py`: its data, settings and one run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from streamdet.config import AugmentConfig, AugmentRange, Config
from streamdet.train import prepare, train
from streamdet.train.robustness import robustness

from .engines import configured
from .media import write_image

SIZE, TRAIN_IMAGES, TEST_IMAGES, EPOCHS, BATCH, LR, COPIES = 16, 128, 48, 8, 32, 1e-3, 3


def make_reencode_dataset(root: Path, per_class: int, seed: int, size: int = SIZE) -> Path:
    """`root/real/*.png` and `root/fake/gen/*.png` where the easy cue dies under H.264 at CRF 35 and a weaker one survives.

    A stand-in for generator artefacts, which compression is known to erase. Every image is a smooth gray texture
    with faint grain and a red/blue tint; reals' tint is uniform in ±30 levels, fakes' 24 levels redder (the two
    overlap by over half: ranking by tint alone gives an AP of about 0.8). Fakes also carry a ±64-level red/blue
    checkerboard at pixel scale: perfectly separating and quickly learnt, but 4:2:0 chroma subsampling removes its
    colour and CRF 32 and above its luma residue, so after re-encoding only the tint is left.
    """
    rng = np.random.default_rng(seed)
    checker = (np.indices((size, size)).sum(axis=0) % 2) * 2.0 - 1.0
    for label, folder in ((0, root / "real"), (1, root / "fake" / "gen")):
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = rng.uniform(88, 168, (max(2, size // 8),) * 2).astype(np.float32)
            gray = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 2, (size, size))
            image = np.repeat(gray[..., None], 3, axis=2)
            cast = rng.uniform(-30, 30) + 24 * label + 64 * label * checker
            image[..., 0] += cast
            image[..., 2] -= cast
            write_image(folder / f"{i:03d}.png", np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return root


def effect_config(base: Config, copies: int, seed: int, epochs: int = EPOCHS, lr: float = LR) -> Config:
    """`base` at the benchmark's image size, training BCE only, with `copies` copies re-encoded through H.264 at CRF 30–40 and flips as the only other augmentation."""
    off = AugmentRange(0.0, 0, 0)
    augment = AugmentConfig(scale=off, blur=off, noise=off, jpeg=off, hevc=off, h264=AugmentRange(1.0, 30, 40))
    return dataclasses.replace(
        base,
        adm=dataclasses.replace(base.adm, image_size=SIZE),
        train=dataclasses.replace(base.train, copies=copies, augment=augment, kd=False, workers=0, epochs=epochs, batch=BATCH,
                                  lr=lr, jpeg_prob=0.0, val_fraction=0.0, seed=seed),
    )


def clean_and_degraded_ap(data: Path, test: Path, config: Config, adm: Path, out: Path) -> tuple[float, float]:
    """Prepare `data`, train a student on it into `out` (the library's own path), and return its AP on `test` clean and under `h264:35`."""
    prepare(data, config, adm=adm, dire=False)
    run = train(data, config, out)
    clean, degraded = (row.images.average["ap"] for row in robustness(test, configured(config, adm=adm, student=run.last), ["h264:35"]).rows)
    return clean, degraded
