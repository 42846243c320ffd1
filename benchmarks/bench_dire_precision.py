"""What a lower precision of the UNet does to DIRE: the 8-bit DIRE images and the classifier's P against fp32.

DIRE runs the UNet 2 × steps times and quantizes |x − recon| to 8 bits, so rounding in the UNet grows over the steps.
This runs `models.dire.DIRE` on the same frames with the UNet in fp32 and under autocast at each --precisions, the
classifier in fp32 each time, and for comparison with the classifier under the same autocast too (what `--method dire`
did before it ran in fp32). Random weights in the official architecture (the tests' `random_adm`, seed 0, and a DIRE
classifier with random BN statistics, seed 5, which does not saturate).

    python benchmarks/bench_dire_precision.py --config tiny --steps 20 --precisions bf16 --images 1
    python benchmarks/bench_dire_precision.py --config default --steps 20 --precisions fp16,bf16 --device cuda   # GPU
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config  # noqa: E402
from streamdet.device import autocast, pick_device  # noqa: E402
from streamdet.models.dire import DIRE, DIREClassifier  # noqa: E402
from streamdet.preprocess import preprocess  # noqa: E402
from tests.checkpoints import random_adm, random_dire_classifier  # noqa: E402
from tests.trainingdata import fake_version, texture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps each way (DIRE's 20)")
    parser.add_argument("--precisions", default="bf16", help="comma-separated: fp16, bf16")
    parser.add_argument("--images", type=int, default=1, help="real and as many fake-looking textures")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cfg = load_config(args.config)
    device = pick_device(args.device)
    dire = DIRE(random_adm(cfg.adm, seed=0), cfg.adm, args.steps).to(device).eval()
    classifier = DIREClassifier().eval()
    classifier.net.load_state_dict(random_dire_classifier(seed=5).state_dict())
    classifier.to(device)
    rng = np.random.default_rng(0)
    size = cfg.adm.image_size + 32
    images = [texture(rng, size) for _ in range(args.images)] + [fake_version(texture(rng, size)) for _ in range(args.images)]
    x = preprocess(images, cfg.adm.image_size, device, rule="dire")
    print(f"config {args.config} ({cfg.adm.image_size}px), {len(images)} frames, {args.steps} DDIM steps each way, {device}")
    with torch.inference_mode():
        start = time.perf_counter()
        reference = dire(x)
        seconds = time.perf_counter() - start
        p_reference = torch.sigmoid(classifier(reference))
        print(f"fp32: {seconds:.1f} s; P {[round(p, 4) for p in p_reference.tolist()]}")
        print(f"{'UNet':6s} {'max |dP|':>9s} {'+classifier':>12s} {'max levels':>11s} {'mean levels':>12s} {'pixels moved':>13s} {'seconds':>8s}")
        for precision in args.precisions.split(","):
            start = time.perf_counter()
            with autocast(device, precision):
                images_at = dire(x)
                p_both = torch.sigmoid(classifier(images_at).float())
            seconds = time.perf_counter() - start
            p_unet = torch.sigmoid(classifier(images_at))
            levels = (images_at.int() - reference.int()).abs()
            print(
                f"{precision:6s} {float((p_unet - p_reference).abs().max()):9.4f} {float((p_both - p_reference).abs().max()):12.4f} "
                f"{int(levels.max()):11d} {float(levels.float().mean()):12.2f} {float((levels > 0).float().mean()):12.1%} {seconds:8.1f}"
            )


if __name__ == "__main__":
    main()
