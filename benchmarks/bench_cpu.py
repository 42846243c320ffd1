"""What a user without a GPU gets: seconds per frame of the full-size pipeline on this CPU, per way of running it.

Full size means the default config: the official 256×256 unconditional ADM architecture and the ResNet-50 student,
with random weights saved in the official formats (speed does not depend on the weights; the student's head is
scaled so its scores on the test frames spread around 0.5, and the score changes are numerical drift, not accuracy). Every variant scores the same
`--frames` frames, through the same engine `scan` uses, in this one run:

- fp32: eager PyTorch, the default on a CPU.
- bf16: eager PyTorch under bf16 autocast (fast only on CPUs with native bf16: AVX-512 BF16 or AMX; printed).
- int8: the ADM exported to ONNX and quantized to int8 (`export --model noise --precision int8`, calibrated
  on `--calibration-frames` frames), run by ONNX Runtime with the student exported in fp32.
- cascade: a lite detector (random ResNet-18, `distill-lite`'s format) scores every frame; frames at or above
  `--triage` go through the fp32 pipeline. With random weights the share escalated is arbitrary, so the table
  also gives the lite model's own cost and the cascade's cost at any share p: lite + p × fp32.

    OMP_NUM_THREADS=2 python benchmarks/bench_cpu.py --frames 3            # about 10 minutes on 2 cores
    python benchmarks/bench_cpu.py --variants fp32,bf16 --frames 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdet.config import load_config, with_overrides  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from streamdet.export.exporter import export_models  # noqa: E402
from streamdet.export.metadata import BatchRange  # noqa: E402
from streamdet.models.lite import LiteDetector, lite_checkpoint  # noqa: E402
from streamdet.video.frame import Frame  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student, spread_head  # noqa: E402
from tests.media import write_image  # noqa: E402

VARIANTS = ("fp32", "bf16", "int8", "cascade")


def native_bf16() -> str:
    """Which native bf16 instructions this CPU has, from /proc/cpuinfo ('none' where it has neither)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    found = [name for name in ("avx512_bf16", "amx_bf16") if name in flags]
    return ", ".join(found) or "none"


def test_frames(n: int, size: tuple[int, int] = (320, 240)) -> list[Frame]:
    """`n` textured frames (smooth gradients plus noise, so the ADM's input is not flat)."""
    rng = np.random.default_rng(3)
    w, h = size
    frames = []
    for i in range(n):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * (i + 1)) % 256, (y * 2 + 40 * i) % 256, ((x + y) // 2) % 256], axis=-1).astype(np.float32)
        image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        frames.append(Frame("bench", i, float(i), image))
    return frames


def timed(engine: Engine, frames: list[Frame]) -> tuple[list[float], list[float]]:
    """Seconds per frame (each frame scored alone, as a CPU scan with batch 1 does) and the scores."""
    seconds, scores = [], []
    for frame in frames:
        start = time.perf_counter()
        (score,) = engine.score_frames([frame])
        seconds.append(time.perf_counter() - start)
        scores.append(score.score)
    return seconds, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default", help="config (default: the full-size default)")
    parser.add_argument("--frames", type=int, default=3, help="frames each variant scores")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--calibration-frames", type=int, default=4, help="frames the int8 ADM is calibrated on")
    parser.add_argument("--triage", type=float, default=0.2, help="the cascade's triage threshold")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)} (choose from {', '.join(VARIANTS)})")
    if args.threads:
        torch.set_num_threads(args.threads)

    base = load_config(args.config)
    frames = test_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adm = save_adm(root / "adm.pt", base.adm)
        student, path = random_student(seed=0), root / "student.pth"
        save_student(path, student)
        settings = with_overrides(base, {"weights.adm": str(adm), "weights.student": str(path), "device": "cpu", "batch": 1, "precision": "fp32"})
        det = Detector.load(settings)  # spread the random head's logits on these frames, so the |ΔP| columns show drift
        spread_head(student.student_head[2], det.logits(det.preprocess(np.stack([f.image for f in frames]))))
        save_student(path, student)
        del det
        runs: dict[str, tuple[list[float], list[float]]] = {}
        extra: dict[str, str] = {}
        if "fp32" in variants or "cascade" in variants:
            runs["fp32"] = timed(Engine.load(settings), frames)
        if "bf16" in variants:
            runs["bf16"] = timed(Engine.load(with_overrides(settings, {"precision": "bf16"})), frames)
        if "int8" in variants:
            calibration = root / "calibration"
            calibration.mkdir()
            for frame in test_frames(args.calibration_frames + args.frames)[args.frames:]:
                write_image(calibration / f"{frame.index}.png", frame.image)
            engines = root / "engines"
            start = time.perf_counter()
            exporting = with_overrides(settings, {"engines": str(engines)})
            export_models(exporting, "onnx", "fp32", BatchRange.around(1, 1, 1, 1), engines, models=["student"])
            export_models(
                exporting, "onnx", "int8", BatchRange.around(1, 1, 1, 1), engines,
                models=["noise"], calibrate=calibration, calibration_frames=args.calibration_frames,
            )
            extra["int8"] = f"export and calibration took {time.perf_counter() - start:.0f} s (once per model)"
            runs["int8"] = timed(Engine.load(with_overrides(settings, {"backend": "onnxruntime", "engines": str(engines), "precision": "int8", "student_precision": "fp32"})), frames)
        if "cascade" in variants:
            lite = root / "lite.pth"
            torch.manual_seed(0)
            torch.save(lite_checkpoint(LiteDetector("resnet18").eval(), {"image_size": base.adm.image_size, "backbone": "resnet18"}), lite)
            engine = Engine.load(with_overrides(settings, {"cascade.lite": str(lite), "cascade.triage": args.triage}))
            runs["cascade"] = timed(engine, frames)
            counts = engine.scorer.describe()
            lite_only = Engine.load(with_overrides(settings, {"cascade.lite": str(lite), "cascade.triage": 1.0}))  # 1.0: nothing escalates
            lite_seconds = statistics.median(timed(lite_only, frames)[0])
            full = statistics.median(runs["fp32"][0])
            extra["cascade"] = (
                f"{counts['cascade']['escalated']} of {counts['cascade']['frames']} frames escalated at triage {args.triage:g}; "
                f"lite alone {lite_seconds:.3f} s/frame, so at a share p escalated: {lite_seconds:.3f} + p × {full:.1f} s"
            )

    print(f"CPU: {torch.get_num_threads()} torch threads; native bf16: {native_bf16()}; config {args.config} "
          f"(ADM {base.adm.image_size}², {args.frames} frames of 320×240, each scored alone)")
    reference = runs.get("fp32")
    print("| variant | s/frame (median) | min–max | × fp32 speed | mean abs ΔP vs fp32 | max abs ΔP |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in [v for v in VARIANTS if v in runs]:
        seconds, scores = runs[name]
        median = statistics.median(seconds)
        speed = f"{statistics.median(reference[0]) / median:.2f}×" if reference else "–"
        if reference and name != "fp32":
            deltas = [abs(a - b) for a, b in zip(scores, reference[1])]
            drift = f"{statistics.mean(deltas):.4f} | {max(deltas):.4f}"
        else:
            drift = "– | –"
        print(f"| {name} | {median:.2f} | {min(seconds):.2f}–{max(seconds):.2f} | {speed} | {drift} |")
    for name, note in extra.items():
        print(f"{name}: {note}")


if __name__ == "__main__":
    main()
