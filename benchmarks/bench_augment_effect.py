"""Does re-encode augmentation keep AP under CRF 35? Students trained with and without `train.copies`, scored by `eval --degrade`.

A generated benchmark: real images are smooth textures with a random colour tint; fakes carry a stronger red/blue cast
and a fine checkerboard (which re-encoding at high CRF wipes out, the cast survives). For each seed, one student is
trained on the clean frames only and one with K copies re-encoded through H.264 at CRF 30–40 (`prepare` computes each
copy's eps), both with the library's own `prepare`, `train` and `robustness`; a held-out set is scored clean and under
`h264:35`. Not a test: a student trained from scratch on a few dozen images varies a lot with the seed.

    OMP_NUM_THREADS=1 python benchmarks/bench_augment_effect.py --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from streamdet.config import AugmentConfig, AugmentRange, load_config
from streamdet.models.adm import build_adm
from streamdet.train import prepare, train
from streamdet.train.robustness import robustness


def make(root: Path, per_class: int, size: int, seed: int) -> Path:
    """`root/real/*.png` and `root/fake/gen/*.png`."""
    rng = np.random.default_rng(seed)
    for label in ("real", "fake/gen"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = rng.uniform(40, 215, (size // 8, size // 8)).astype(np.float32)
            gray = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 4, (size, size))
            image = np.repeat(gray[..., None], 3, axis=2)
            tint = rng.uniform(-12, 12) + (30 if label != "real" else 0)
            image[..., 0] += tint
            image[..., 2] -= tint
            if label != "real":
                image += ((np.indices((size, size)).sum(axis=0) % 2) * 2 - 1)[..., None] * 20.0
            cv2.imwrite(str(root / label / f"{i:03d}.png"), cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--train-images", type=int, default=16, help="Per class.")
    parser.add_argument("--test-images", type=int, default=24, help="Per class.")
    parser.add_argument("--size", type=int, default=32, help="ADM image size (the tiny ADM at this size).")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_config("tiny")
    config = dataclasses.replace(base, adm=dataclasses.replace(base.adm, image_size=args.size))
    off = AugmentRange(0.0, 0, 0)
    augment = AugmentConfig(scale=off, blur=off, noise=off, jpeg=off, hevc=off, h264=AugmentRange(1.0, 30, 40))
    print(f"bench_augment_effect: tiny ADM at {args.size}px, {args.train_images}+{args.train_images} train and {args.test_images}+{args.test_images} test images, "
          f"{args.epochs} epochs, lr {args.lr}, batch 8, copies {args.copies} (h264 CRF 30-40), seeds {args.seeds}")
    print("\n| seed | student | clean AP | h264:35 AP | change |\n| --- | --- | ---: | ---: | ---: |")
    results: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        torch.manual_seed(0)
        adm = tmp_path / "adm.pt"
        torch.save(build_adm(config.adm).state_dict(), adm)
        for seed in map(int, args.seeds.split(",")):
            data = make(tmp_path / f"train{seed}", args.train_images, args.size, seed)
            test = make(tmp_path / f"test{seed}", args.test_images, args.size, 1000 + seed)
            for name, copies in (("without", 0), ("with", args.copies)):
                cfg = dataclasses.replace(config, train=dataclasses.replace(
                    config.train, copies=copies, augment=augment, kd=False, workers=0, epochs=args.epochs, batch=8,
                    lr=args.lr, jpeg_prob=0.0, val_fraction=0.0, seed=seed))
                prepare(data, cfg, adm=adm, dire=False)
                run = train(data, cfg, tmp_path / f"run{seed}{name}")
                clean, degraded = (r.images.average["ap"] for r in robustness(test, cfg, run.last, ["h264:35"], adm=adm).rows)
                results[name].append(degraded)
                print(f"| {seed} | {name} re-encode copies | {100 * clean:.1f} | {100 * degraded:.1f} | {100 * (degraded - clean):+.1f} |")
    print(f"\nmean h264:35 AP: without {100 * statistics.mean(results['without']):.1f}, with {100 * statistics.mean(results['with']):.1f}")


if __name__ == "__main__":
    main()
