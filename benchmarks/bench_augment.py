"""Benchmark the video augmentations: each degradation's cost per frame, and the two ways to keep eps consistent with
an augmented frame (recompute eps in every training step, or cache K augmented copies with their eps in `prepare`).

Measures, on this machine: each op of `streamdet.video.degrade` on generated frames of --size (re-encoding as
clips of --clip frames), one first-step eps pass of the config's ADM (random weights) and one student training
step (forward + backward, BCE) per image, then prints per-image costs of both strategies over --epochs with
--copies copies.

    python benchmarks/bench_augment.py --config tiny --threads 1
    python benchmarks/bench_augment.py --config default --size 1920x1080   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamdet.config import load_config
from streamdet.device import autocast, pick_device, pick_precision
from streamdet.models.adm import build_adm
from streamdet.models.noise import FirstStepNoise
from streamdet.models.student import Student
from streamdet.preprocess import preprocess
from streamdet.video.degrade import parse

OPS = ["jpeg:75", "scale:0.5", "blur:2", "noise:5", "h264:28", "hevc:28"]


def frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """`n` smooth random colour frames that drift a little, like a slow camera pan."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8), (width + 32, height + 32), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(base[i : i + height, i : i + width]) for i in range(n)]


def per_frame_ms(fn, repeats: int, n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / (repeats * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--size", default="1280x720", help="Frame size WxH the degradations run on.")
    parser.add_argument("--clip", type=int, default=8, help="Frames per re-encoded clip.")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = map(int, args.size.split("x"))
    config = load_config(args.config)
    device = pick_device(config.device)
    precision = pick_precision(config.precision, device)
    size = config.adm.image_size
    load = os.getloadavg()[0]
    print(f"bench_augment: config {args.config} ({size}x{size}), frames {width}x{height}, clip {args.clip}, device {device}, precision {precision}, "
          f"batch {args.batch}, torch threads {torch.get_num_threads()}, load average before {load:.1f}")

    clip = frames(args.clip, width, height)
    print("\n| degradation | ms per frame |\n| --- | ---: |")
    op_ms = {}
    for spec in OPS:
        degradation = parse(spec)[0]
        rng = np.random.default_rng(0)
        op_ms[spec] = per_frame_ms(lambda: degradation.apply(clip, rng), 2, len(clip))
        print(f"| {spec} | {op_ms[spec]:.2f} |")

    x = preprocess(frames(args.batch, width, height), size, device)
    noise = FirstStepNoise(build_adm(config.adm), config.adm).to(device).eval().requires_grad_(False)

    def eps_pass() -> None:
        with torch.inference_mode(), autocast(device, precision):
            noise(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    student = Student().to(device).train()
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-4)
    eps = torch.randn_like(x)
    y = torch.ones(args.batch, device=device)

    def train_step() -> None:
        with autocast(device, precision):
            loss = F.binary_cross_entropy_with_logits(student(x, eps).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    eps_ms = per_frame_ms(eps_pass, 3, args.batch)
    step_ms = per_frame_ms(train_step, 3, args.batch)
    degrade_ms = op_ms["h264:28"]
    print(f"\n| per image ({size}x{size}) | ms |\n| --- | ---: |")
    print(f"| eps: one ADM pass | {eps_ms:.1f} |\n| student training step (fwd + bwd) | {step_ms:.1f} |\n| H.264 re-encode of the frame (CRF 28) | {degrade_ms:.2f} |")

    e, k = args.epochs, args.copies
    recompute = e * (degrade_ms + eps_ms + step_ms)
    cached_prepare = k * (degrade_ms + eps_ms)
    cached = cached_prepare + e * step_ms
    plain = e * step_ms
    print(f"\n| strategy ({e} epochs, {k} copies) | ADM passes per image | ms per image | × plain training |\n| --- | ---: | ---: | ---: |")
    print(f"| no video augmentation | 0 | {plain:.0f} | 1.00 |")
    print(f"| recompute eps on the augmented frame every step | {e} | {recompute:.0f} | {recompute / plain:.2f} |")
    print(f"| cache {k} augmented copies in prepare | {k} | {cached:.0f} (prepare {cached_prepare:.0f}) | {cached / plain:.2f} |")

    # Full size from docs/design.md §4: an ADM pass is 2,240 GFLOP, a student step about 3 × 11 GFLOP (forward + backward);
    # prepare already costs 1 + 2 × dire_steps passes per image (eps and DIRE).
    adm, step, base_passes = 2240.0, 33.0, 1 + 2 * config.train.dire_steps
    base = base_passes * adm + e * step
    print(f"\n| full-size cost model, whole pipeline per image ({e} epochs, {k} copies) | TFLOP | × no augmentation |\n| --- | ---: | ---: |")
    print(f"| prepare (eps + DIRE, {base_passes} ADM passes) + training, no video augmentation | {base / 1000:.1f} | 1.00 |")
    print(f"| same, recomputing eps every step (+{e} ADM passes) | {(base + e * adm) / 1000:.1f} | {(base + e * adm) / base:.2f} |")
    print(f"| same, {k} cached copies (+{k} ADM passes in prepare) | {(base + k * adm) / 1000:.1f} | {(base + k * adm) / base:.2f} |")


if __name__ == "__main__":
    main()
