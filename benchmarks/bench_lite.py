"""Benchmark the cheaper paths past the ADM: the int8 noise model, the lite detector and the cascade.

On a generated labelled dataset (fakes carry a colour cast and a checkerboard, each at a random strength from
`--faint` to 1, so that some fakes are hard to tell from real frames) it builds a full student that
separates the classes (a random ResNet-50 body whose linear head is fitted by logistic regression on the train
frames' pooled features: training the whole student on a CPU takes too long to separate them), distills a lite
detector from the full pipeline on the train split, quantizes a copy of it (LSQ, `compress quantize`), and on the
val split reports: int8 eps error and |ΔP| against fp32; the full pipeline's and each cascade's frames/s, timed
round-robin over `--rounds` rounds in this one run (median frames/s; speed-up = median of the per-round ratios);
per triage T the share of frames escalated and the recall lost against the full pipeline at the same final threshold
(the share of the fakes the full pipeline flags that the cascade does not), with the full pipeline's flags it loses.

    OMP_NUM_THREADS=1 python benchmarks/bench_lite.py --config tiny           # CPU, a few minutes
    python benchmarks/bench_lite.py --config default --images 512              # GPU, full-size models (random weights)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdet.cascade import Cascade  # noqa: E402
from streamdet.compress import Settings, quantize_lite  # noqa: E402
from streamdet.config import Config, load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.export.exporter import export_models  # noqa: E402
from streamdet.export.metadata import BatchRange  # noqa: E402
from streamdet.preprocess import preprocess  # noqa: E402
from streamdet.train.dataset import load_items, read_rgb, train_val  # noqa: E402
from streamdet.train.lite import distill_lite  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402
from tests.trainingdata import make_graded_dataset  # noqa: E402

Score = Callable[[torch.Tensor], torch.Tensor]


def separating_student(config: Config, adm: Path, x: torch.Tensor, labels: torch.Tensor, out: Path, steps: int = 400) -> Path:
    """A random student whose head is fitted (logistic regression, Adam) to `labels` on the pooled features of (x, eps)."""
    student = random_student(seed=0)
    detector = Detector.load(with_overrides(config, {"weights.adm": str(adm), "weights.student": str(save_student(out, student))}))
    with torch.no_grad():
        _, features = student.forward_features(x, detector.noise(x))
        pooled = features.mean(dim=(2, 3))
    mean, std = pooled.mean(0), pooled.std(0) + 1e-6
    head = torch.nn.Linear(pooled.shape[1], 1)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-3)
    z = (pooled - mean) / std
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(z).squeeze(1), labels.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    linear = student.student_head[2]
    with torch.no_grad():  # head(z) on standardised features = linear on the raw ones
        linear.weight.copy_(head.weight / std)
        linear.bias.copy_(head.bias - (head.weight / std * mean).sum())
    return save_student(out, student)


def round_robin(pipelines: dict[str, Score], x: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each pipeline on `x`, the pipelines taking turns within each round."""
    seconds: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name, score in pipelines.items():
            start = time.perf_counter()
            score(x)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--images", type=int, default=160, help="dataset size")
    parser.add_argument("--fake-share", type=float, default=0.2, help="share of fakes in the dataset (the cascade pays off where most frames are real)")
    parser.add_argument("--faint", type=float, default=0.05, help="weakest strength of a fake's traces (1: all at full strength)")
    parser.add_argument("--val-fraction", type=float, default=0.5)
    parser.add_argument("--lite-epochs", type=int, default=15)
    parser.add_argument("--quant-bits", type=int, default=4, help="bits of the quantized lite copy (0: none)")
    parser.add_argument("--quant-steps", type=int, default=30)
    parser.add_argument("--triage", type=float, nargs="+", default=[0.001, 0.01, 0.05, 0.2, 0.5])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = load_config(args.config, {"train.batch": 16, "train.workers": 0, "train.lr": 1e-3, "train.val_fraction": args.val_fraction})
    size, threshold = config.adm.image_size, config.threshold
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_fake = round(args.images * args.fake_share)
        data = make_graded_dataset(root / "data", args.images - n_fake, n_fake, size, args.faint, seed=1)
        adm = save_adm(root / "adm.pt", config.adm)
        train, val = train_val(load_items(data), config.train.val_fraction, config.train.seed)
        x_train = preprocess([read_rgb(data / item.path) for item in train], size)
        student = separating_student(config, adm, x_train, torch.tensor([item.label for item in train]), root / "student.pth")
        lite = root / "lite.pth"
        distill_lite(data, with_overrides(config, {"weights.adm": str(adm), "train.epochs": args.lite_epochs}), student, lite)
        lites = {"": lite}
        if args.quant_bits:
            quantized = root / f"lite-q{args.quant_bits}.pth"
            quantize_lite(lite, data, config, quantized, Settings(bits=args.quant_bits, steps=args.quant_steps, batch=8))
            lites[f" q{args.quant_bits}"] = quantized

        labels = torch.tensor([item.label for item in val], dtype=torch.bool)
        full = Detector.load(with_overrides(config, {"weights.adm": str(adm), "weights.student": str(student)}))
        x = full.preprocess([read_rgb(data / item.path) for item in val])
        p_full = full.score(x)
        flagged = p_full >= threshold

        engines = root / "engines"
        export_models(config, "onnx", "int8", BatchRange.around(config.batch), engines, adm=adm, student=student, models=["noise"], calibrate=data)
        session = onnxruntime.InferenceSession(str(engines / "noise-int8.onnx"), providers=["CPUExecutionProvider"])
        eps_int8 = torch.cat([torch.from_numpy(session.run(None, {"x": x[i : i + config.batch].numpy()})[0]) for i in range(0, len(x), config.batch)])
        eps_fp32 = full.noise(x)
        with torch.no_grad():
            p_int8 = torch.sigmoid(full.backend.student(x, eps_int8))
        rel = float((eps_int8 - eps_fp32).norm() / eps_fp32.norm())
        dp = (p_int8 - p_full).abs()

        cascades = {f"{triage:g}{suffix}": Cascade.load(full, path, triage) for triage in args.triage for suffix, path in lites.items()}
        results = {name: c.score(x) for name, c in cascades.items()}  # scores once (also a warm-up); shares from these calls
        shares = {name: c.escalated / c.frames for name, c in cascades.items()}
        seconds = round_robin({"full": full.score, **{name: c.score for name, c in cascades.items()}}, x, args.rounds)

        fps = {name: len(x) / statistics.median(s) for name, s in seconds.items()}
        print(
            f"config {args.config} ({size}px), {len(val)} val frames ({int(labels.sum())} fake), threshold {threshold}, "
            f"torch threads {torch.get_num_threads()}, {args.rounds} rounds"
        )
        print(
            f"full pipeline: {fps['full']:.2f} frames/s, recall {float((flagged & labels).sum() / labels.sum()):.3f}, "
            f"false positives {int((flagged & ~labels).sum())} of {int((~labels).sum())} real"
        )
        print(f"int8 noise model: eps relative error {rel:.4f}; |ΔP| mean {float(dp.mean()):.2e}, max {float(dp.max()):.2e}; decisions changed {int(((p_int8 >= threshold) != flagged).sum())}")
        print()
        print("| triage T (lite) | escalated | cascade frames/s | speed-up | recall lost vs full | full's flags lost (fake + real) | recall vs labels | false positives |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        full_fakes = flagged & labels
        for name, p in results.items():
            caught = p >= threshold
            lost_fakes, lost_real = int((full_fakes & ~caught).sum()), int((flagged & ~labels & ~caught).sum())
            recall_lost = lost_fakes / max(1, int(full_fakes.sum()))
            recall = float((caught & labels).sum() / labels.sum())
            speedup = statistics.median(f / c for f, c in zip(seconds["full"], seconds[name]))
            print(
                f"| {name} | {shares[name]:.1%} | {fps[name]:.2f} | {speedup:.2f}× | {recall_lost:.1%} | {lost_fakes} + {lost_real} | "
                f"{recall:.3f} | {int((caught & ~labels).sum())} |"
            )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
