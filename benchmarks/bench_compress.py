"""Benchmark compressed students: size, cost and accuracy of each `streamdet compress` variant against the original.

Builds a generated, graded image dataset (fakes carry a colour cast and a checkerboard blended in at a random
strength from `--faint` to 1, so some fakes are hard to tell from real frames), prepares eps with a random tiny
ADM, trains the uncompressed student with the library's own `train` (BCE only; a random body with a fitted linear
head, as bench_lite uses, was tried: its signal lies in tiny feature differences that even 8-bit quantization
wipes out), then runs `compress` for each variant with the same short fine-tune and reports, per variant: parameters, stored size, GFLOPs and GBOPs per 256×256 frame, CPU latency per frame
(256×256, batch 1, one thread), Acc/AP on the dataset's val split against the uncompressed student, and max and
mean |ΔP| against it there (n: the val images), the fine-tune step whose state was kept, and for the quantized
variants the mean |ΔP| of both starting points before any fine-tune: LSQ's initial steps and a plain MSE-clipped
post-training quantization of the same layout (the fine-tune starts from the better one).

    OMP_NUM_THREADS=1 python benchmarks/bench_compress.py              # tiny config, CPU, a few minutes
    OMP_NUM_THREADS=1 python benchmarks/bench_compress.py --labels     # fine-tune with the label term too
    OMP_NUM_THREADS=1 python benchmarks/bench_compress.py --only W4A4 "prune 25%" --lr 1e-6 1e-5 1e-4   # the lr measurement
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.compress import Settings, compress  # noqa: E402
from streamdet.compress.measure import cost  # noqa: E402
from streamdet.config import load_config  # noqa: E402
from streamdet.models.student import load_student  # noqa: E402
from streamdet.train import prepare, train  # noqa: E402
from tests.checkpoints import save_adm  # noqa: E402
from tests.trainingdata import make_graded_dataset  # noqa: E402

FULL = 256  # the official input size: cost and latency are reported there

VARIANTS: list[tuple[str, str | None, str, Settings]] = [
    ("prune 25% FLOPs", None, "prune", Settings(ratio=0.25, target="flops")),
    ("magnitude 87.5% sparse", None, "prune", Settings(sparsity=0.875)),
    ("svd 50% FLOPs", None, "svd", Settings(flops=0.5)),
    ("prune 50% + svd 50% FLOPs", "prune 50% FLOPs", "svd", Settings(flops=0.5)),
    ("LSQ W8A8", None, "quantize", Settings(bits=8)),
    ("LSQ W4A4", None, "quantize", Settings(bits=4)),
    ("LSQ W3A3", None, "quantize", Settings(bits=3)),
    ("LSQ W2A2", None, "quantize", Settings(bits=2)),
]
STAGES = {"prune 50% FLOPs": ("prune", Settings(ratio=0.5, target="flops"))}


def latencies_ms(models: list[torch.nn.Module], repeats: int) -> list[float]:
    """Median CPU time of one 256×256 frame through each student, measured round-robin so load changes hit all alike."""
    x = torch.rand(1, 3, FULL, FULL) * 2 - 1
    times: list[list[float]] = [[] for _ in models]
    with torch.no_grad():
        for model in models:
            model(x, x)
        for _ in range(repeats):
            for model, own in zip(models, times):
                start = time.perf_counter()
                model(x, x)
                own.append(time.perf_counter() - start)
    return [1000 * statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="real images (as many fakes); half of them are the val split")
    parser.add_argument("--faint", type=float, default=0.02, help="weakest strength of a fake's traces (1: all at full strength)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the uncompressed student")
    parser.add_argument("--steps", type=int, default=30, help="fine-tune steps per variant")
    parser.add_argument("--lr", type=float, nargs="+", default=[Settings.lr], help="fine-tune learning rates (each variant is run at each)")
    parser.add_argument("--only", nargs="+", default=None, help="run only the variants whose name contains one of these")
    parser.add_argument("--labels", action="store_true", help="fine-tune with BCE against the labels as well as the original's P")
    parser.add_argument("--repeats", type=int, default=7, help="latency rounds")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    config = load_config("tiny", {"train.kd": False, "train.epochs": args.epochs, "train.batch": 8, "train.lr": 1e-3, "train.workers": 0,
                                  "train.val_fraction": 0.5, "train.jpeg_prob": 0.0})
    tune = {"steps": args.steps, "labels": args.labels}
    variants = [v for v in VARIANTS if args.only is None or any(part in v[0] for part in args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        adm = save_adm(tmp / "adm.pt", config.adm)
        data = make_graded_dataset(tmp / "data", args.images, args.images, config.adm.image_size, args.faint, seed=1)
        prepare(data, config, adm=adm, dire=False)
        original = train(data, config, tmp / "run").best
        reference = load_student(original)
        ref_cost = cost(reference, FULL)
        staged = {}
        for name, (method, settings) in STAGES.items():
            if any(start == name for _, start, _, _ in variants):
                staged[name] = compress(method, original, data, config, tmp / f"{name}.pth", dataclasses.replace(settings, **tune, lr=args.lr[0])).out
        results = []
        for lr in args.lr:
            for name, start, method, settings in variants:
                label = name if len(args.lr) == 1 else f"{name}, lr {lr:g}"
                result = compress(method, staged[start] if start else original, data, config, tmp / f"{label}.pth", dataclasses.replace(settings, **tune, lr=lr))
                results.append((label, result, load_student(result.out)))
        ms = latencies_ms([reference] + [model for _, _, model in results], args.repeats)
        ref_bytes, ref_metrics = results[0][1].original.stored_bytes, results[0][1].original.metrics
        rows = [("uncompressed student", ref_cost, ref_bytes, ms[0], ref_metrics, None, None)]
        for (name, result, model), latency in zip(results, ms[1:]):
            rows.append((name, cost(model, FULL), result.out.stat().st_size, latency, result.compressed.metrics, result, result.step.get("init")))
        print(f"bench_compress: tiny config (eps from a random 64×64 ADM), {2 * args.images} graded images (faint {args.faint}), val {ref_metrics.n_real + ref_metrics.n_fake}, "
              f"fine-tune up to {args.steps} steps (batch 8, lr {', '.join(f'{lr:g}' for lr in args.lr)}, {'labels + ' if args.labels else ''}original's P; "
              f"best held-out state kept), torch threads {args.threads}, load average before {load:.1f}, after {os.getloadavg()[0]:.1f}")
        print()
        print("| variant | params | nonzero | stored MB | GFLOPs | GBOPs | FLOPs | storage | CPU ms/frame | Acc | AP | ΔAP | max abs ΔP | mean abs ΔP | n | kept step | "
              "mean abs ΔP at start: LSQ init | MSE-clipped PTQ |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, c, size, latency, m, result, init in rows:
            fid = f"{result.fidelity.max:.3f} | {result.fidelity.mean:.3f} | {result.fidelity.n} | {result.tuned.kept}/{len(result.tuned.losses)}" if result else "0 | 0 | | "
            start = f"{init['lsq']['mean']:.3f}{' (chosen)' if init['chosen'] == 'lsq' else ''} | {init['mse_ptq']['mean']:.3f}{' (chosen)' if init['chosen'] == 'mse_ptq' else ''}" if init else " | "
            print(f"| {name} | {c.params / 1e6:.2f} M | {c.nonzero / 1e6:.2f} M | {size / 1e6:.1f} | {c.gflops:.2f} | {c.gbops:.0f} | {c.gflops / ref_cost.gflops:.0%} | "
                  f"1/{ref_bytes / size:.1f} | {latency:.0f} | {m.acc:.3f} | {m.ap:.3f} | {100 * (m.ap - ref_metrics.ap):+.1f} | {fid} | {start} |")


if __name__ == "__main__":
    main()
