"""Does re-encode augmentation keep AP under CRF 35? Students trained with and without `train.copies`, scored by `eval --degrade`.

The generated benchmark (`tests/reencode_effect.py`) stands in for generator artefacts, which
compression is known to erase: fakes carry a strong pixel-scale colour checkerboard that H.264 at CRF 35 wipes out,
and a weaker tint that survives re-encoding but overlaps with the reals' own tints. For each seed, one student is
trained on the clean frames only and one with K copies re-encoded through H.264 at CRF 30–40 (`prepare` computes
each copy's eps), both with the library's own `prepare`, `train` and `robustness` (tiny ADM with random weights);
a held-out set is scored clean and under `h264:35`. `tests/test_augment_effect.py` runs these defaults on one seed.

    OMP_NUM_THREADS=1 python benchmarks/bench_augment_effect.py --seeds 1,2,3,4,5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config  # noqa: E402
from tests.checkpoints import save_adm  # noqa: E402
from tests.reencode_effect import BATCH, COPIES, EPOCHS, LR, SIZE, TEST_IMAGES, TRAIN_IMAGES, clean_and_degraded_ap, effect_config, make_reencode_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES, help="Per class.")
    parser.add_argument("--test-images", type=int, default=TEST_IMAGES, help="Per class.")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--copies", type=int, default=COPIES)
    parser.add_argument("--lr", type=float, default=LR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_config("tiny")
    print(f"bench_augment_effect: tiny ADM at {SIZE}px, {args.train_images}+{args.train_images} train and {args.test_images}+{args.test_images} test images, "
          f"{args.epochs} epochs, lr {args.lr}, batch {BATCH}, copies {args.copies} (h264 CRF 30-40), seeds {args.seeds}")
    print("\n| seed | student | clean AP | h264:35 AP | change | seconds |\n| --- | --- | ---: | ---: | ---: | ---: |")
    results: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        adm = save_adm(tmp_path / "adm.pt", effect_config(base, 0, 0).adm)
        for seed in map(int, args.seeds.split(",")):
            data = make_reencode_dataset(tmp_path / f"train{seed}", args.train_images, seed, SIZE)
            test = make_reencode_dataset(tmp_path / f"test{seed}", args.test_images, 1000 + seed, SIZE)
            for name, copies in (("without", 0), ("with", args.copies)):
                config = effect_config(base, copies, seed, args.epochs, args.lr)
                started = time.perf_counter()
                clean, degraded = clean_and_degraded_ap(data, test, config, adm, tmp_path / f"run{seed}{name}")
                results[name].append(degraded)
                print(f"| {seed} | {name} re-encode copies | {100 * clean:.1f} | {100 * degraded:.1f} | {100 * (degraded - clean):+.1f} | {time.perf_counter() - started:.0f} |", flush=True)
    gains = [100 * (w - wo) for w, wo in zip(results["with"], results["without"])]
    print(f"\nmean h264:35 AP: without {100 * statistics.mean(results['without']):.1f}, with {100 * statistics.mean(results['with']):.1f}; "
          f"gain per seed {', '.join(f'{g:+.1f}' for g in gains)} (smallest {min(gains):+.1f})")


if __name__ == "__main__":
    main()
