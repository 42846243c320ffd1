"""Benchmark training your own detector: `prepare` (eps, DIRE) and `train` throughput, in images/s.

Builds a generated image dataset, random weights in the config's architecture saved in the official
formats (ADM state_dict, torchvision resnet50 state_dict for the teacher), and runs the library's own
`prepare` and `train` on it, so the numbers include image decoding, caching and data loading.

    python benchmarks/bench_train.py --config tiny                  # CPU
    python benchmarks/bench_train.py --config default --images 256  # GPU, full-size models
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.models import resnet50

from streamdet.config import load_config, with_overrides
from streamdet.device import pick_device, pick_precision
from streamdet.models.adm import build_adm
from streamdet.train import prepare, train


def make_dataset(root: Path, images: int, size: int) -> Path:
    """`images` random-texture PNGs, half in real/, half in fake/gen/."""
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / ("real" if i % 2 == 0 else "fake/gen")
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--images", type=int, default=32, help="dataset size")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (the first one warms up; the last is reported)")
    parser.add_argument("--batch", type=int, default=None, help="prepare batch (default: the config's)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--loader-workers", type=int, default=2, help="training data loader processes (train.workers, `train --loader-workers`)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    config = with_overrides(load_config(args.config), device=args.device, batch=args.batch)
    device = pick_device(config.device)
    size = config.adm.image_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        torch.save(build_adm(config.adm).state_dict(), tmp / "adm.pt")
        torch.save(resnet50(weights=None).state_dict(), tmp / "teacher.pth")
        root = make_dataset(tmp / "data", args.images, size)
        config = with_overrides(config, {"train.epochs": args.epochs, "train.batch": args.train_batch, "train.workers": args.loader_workers,
                                         "train.teacher": str(tmp / "teacher.pth"), "train.val_fraction": 0.1})

        start = time.perf_counter()
        eps = prepare(root, config, adm=tmp / "adm.pt", dire=False)
        eps_wall = time.perf_counter() - start
        start = time.perf_counter()
        dire = prepare(root, config, adm=tmp / "adm.pt", dire=True)
        dire_wall = time.perf_counter() - start

        rows = [
            ("prepare: eps", eps.eps / eps.eps_s, eps.eps / eps_wall),
            (f"prepare: DIRE ({config.train.dire_steps} DDIM steps)", dire.dire / dire.dire_s, dire.dire / dire_wall),
        ]
        for kd in (True, False):
            result = train(root, with_overrides(config, {"train.kd": kd}), tmp / f"run-kd{int(kd)}")
            rows.append((f"train: {'BCE + KD (teacher on DIRE)' if kd else 'BCE only (--no-kd)'}", None, result.epochs[-1]["train_images_per_s"]))

    precision = pick_precision(config.precision, device)
    print(f"bench_train: config {args.config} ({size}x{size}), {args.images} images, device {device}, "
          f"prepare precision {precision}, batch {config.batch} (prepare) / {args.train_batch} (train), "
          f"torch threads {torch.get_num_threads()}, loader workers {args.loader_workers}, load average before {load:.1f}")
    print()
    print("| stage | model only, images/s | end to end, images/s |")
    print("| --- | ---: | ---: |")
    for name, model, total in rows:
        print(f"| {name} | {'' if model is None else f'{model:.2f}'} | {total:.2f} |")


if __name__ == "__main__":
    main()
