"""Benchmark the backends against eager PyTorch in one run: frames/s, latency per batch, peak memory, and score parity.

Random weights in the official checkpoint formats (speed does not depend on the values). Each backend runs
in its own process, so that peak memory is its own; exports are made first and timed.

    python benchmarks/bench_backends.py --config tiny                  # CPU
    python benchmarks/bench_backends.py --config default --batch 32    # GPU, full-size models
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config, with_overrides  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.device import pick_device, pick_precision  # noqa: E402
from streamdet.errors import StreamdetError  # noqa: E402
from streamdet.export.metadata import BatchRange  # noqa: E402
from streamdet.export.exporter import export_models  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402

# (label, backend, student precision): the int8 row quantizes the student only.
RUNS = [
    ("torch (eager)", "torch", None),
    ("compile", "compile", None),
    ("onnxruntime", "onnxruntime", None),
    ("onnxruntime, int8 student", "onnxruntime", "int8"),
    ("tensorrt", "tensorrt", None),
    ("tensorrt, int8 student", "tensorrt", "int8"),
]


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth images with noise, like photos more than like white noise, as uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        base = np.stack([np.sin(xx / (7 + i)), np.cos(yy / (5 + i % 7)), np.sin((xx + yy) / 11)], -1) * 100 + 128
        out[i] = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return out


def worker(args: argparse.Namespace) -> None:
    """Time one backend; print a JSON line with its numbers and its logits."""
    config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    settings = {"weights.adm": str(args.adm), "weights.student": str(args.student), "backend": args.worker, "engines": str(args.engines),
                "student_precision": args.student_precision}
    det = Detector.load(with_overrides(config, settings))
    load_s = time.perf_counter() - started
    device = det.device
    x = det.preprocess(frames(args.batch * args.batches, config.adm.image_size))
    chunks = x.split(args.batch)
    det.logits(chunks[0])  # first call: allocations, kernel choice (not timed, as any backend would be used)
    latencies, logits, peak_gpu = [], [], 0.0
    for chunk in chunks:
        sync(device)
        t0 = time.perf_counter()
        logits.append(det.logits(chunk))
        sync(device)
        latencies.append(time.perf_counter() - t0)
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device)
            peak_gpu = max(peak_gpu, (total - free) / 2**20)
    result = {
        "precision": det.backend.precision,
        "student_precision": det.backend.student_precision,
        "load_s": load_s,
        "warmup_s": det.backend.warmup_s,
        "fps": len(x) / sum(latencies),
        "latency_ms": statistics.median(latencies) * 1000,
        "peak_mb": peak_gpu if device.type == "cuda" else peak_rss_mb(),
        "logits": torch.cat(logits).cpu().tolist(),
    }
    print(json.dumps(result))


def run_worker(args: argparse.Namespace, backend: str, student_precision: str | None) -> dict:
    command = [sys.executable, __file__, "--worker", backend, "--config", args.config, "--batch", str(args.batch), "--batches", str(args.batches),
               "--adm", str(args.adm), "--student", str(args.student), "--engines", str(args.engines)]
    for flag, value in (("--device", args.device), ("--precision", args.precision), ("--student-precision", student_precision), ("--threads", args.threads)):
        if value is not None:
            command += [flag, str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_all(args: argparse.Namespace, config, device: torch.device) -> dict[tuple[str, str | None], str | float]:
    """Export what the exported backends need; the seconds each took, or why it could not be done."""
    exports: dict[tuple[str, str | None], str | float] = {}
    batches = BatchRange.around(args.batch)
    calibration = args.engines / "calibration"
    calibration.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(frames(16, config.adm.image_size, seed=1)):
        cv2.imwrite(str(calibration / f"{i}.png"), image[..., ::-1])
    ort_precision = "fp16" if config.precision == "auto" and device.type == "cuda" else pick_precision(config.precision, device)
    trt_precision = pick_precision(config.precision, device)
    plan = [("onnx", ort_precision, None, "onnxruntime"), ("onnx", "int8", "int8", "onnxruntime"),
            ("tensorrt", trt_precision, None, "tensorrt"), ("tensorrt", "int8", "int8", "tensorrt")]
    for fmt, precision, student_precision, backend in plan:
        started = time.perf_counter()
        try:
            export_models(config, fmt, precision, batches, args.engines, adm=args.adm, student=args.student, calibrate=calibration if precision == "int8" else None)
            exports[(backend, student_precision)] = time.perf_counter() - started
        except StreamdetError as exc:
            exports[(backend, student_precision)] = str(exc)
    return exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, help="auto (bf16 on GPUs; ONNX Runtime fp16), fp32, fp16, bf16")
    parser.add_argument("--batch", type=int, default=None, help="frames per model call (default: the config's)")
    parser.add_argument("--batches", type=int, default=4, help="timed batches per backend")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime (default: torch's)")
    parser.add_argument("--backends", default=",".join(dict.fromkeys(b for _, b, _ in RUNS)), help="comma-separated subset of torch,compile,onnxruntime,tensorrt")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--student-precision", help=argparse.SUPPRESS)
    parser.add_argument("--adm", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--student", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engines", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    args.batch = config.batch
    if args.worker:
        return worker(args)

    device = pick_device(config.device)
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="streamdet-bench-backends-"))
    args.adm, args.student, args.engines = tmp / "adm.pt", tmp / "student.pth", tmp / "engines"
    save_adm(args.adm, config.adm)
    save_student(args.student, random_student(seed=1))
    exports = export_all(args, config, device)
    wanted = args.backends.split(",")
    rows, reference = [], None
    for label, backend, student_precision in RUNS:
        if backend not in wanted:
            continue
        export = exports.get((backend, student_precision))
        if isinstance(export, str):
            rows.append((label, None, export))
            continue
        result = run_worker(args, backend, student_precision)
        if "error" in result:
            rows.append((label, None, result["error"]))
            continue
        result["export_s"] = export
        if reference is None and backend == "torch":
            reference = torch.tensor(result["logits"])
        rows.append((label, result, None))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores, {args.threads or torch.get_num_threads()} threads)"
    print(f"streamdet backends benchmark: config {args.config}, {config.adm.image_size}px, device {name}, batch {args.batch} x {args.batches} timed batches")
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: other processes on these cores slow every row")
    memory = "GPU memory in use (sampled)" if device.type == "cuda" else "peak resident set of the backend's process"
    print(f"peak MB: {memory}; max |dlogit| and |dP|: against eager PyTorch on the same frames")
    header = f"{'backend':<27}{'precision':>11}{'frames/s':>10}{'x eager':>9}{'ms/batch':>10}{'peak MB':>9}{'export s':>10}{'warm-up s':>11}{'|dlogit|':>10}{'|dP|':>10}"
    print(header)
    eager_fps = next((r["fps"] for label, r, _ in rows if r is not None and label.startswith("torch")), None)
    for label, result, problem in rows:
        if result is None:
            print(f"{label:<27}  not run: {problem}")
            continue
        precision = result["precision"] if result["student_precision"] == result["precision"] else f"{result['precision']}/{result['student_precision']}"
        logits = torch.tensor(result["logits"])
        dlogit = (logits - reference).abs().max().item() if reference is not None else float("nan")
        dp = (torch.sigmoid(logits) - torch.sigmoid(reference)).abs().max().item() if reference is not None else float("nan")
        speedup = result["fps"] / eager_fps if eager_fps else float("nan")
        export = f"{result['export_s']:.1f}" if result.get("export_s") is not None else "-"
        warmup = f"{result['warmup_s']:.1f}" if result["warmup_s"] is not None else "-"
        print(f"{label:<27}{precision:>11}{result['fps']:>10.1f}{speedup:>9.2f}{result['latency_ms']:>10.1f}{result['peak_mb']:>9.0f}{export:>10}{warmup:>11}{dlogit:>10.1e}{dp:>10.1e}")


if __name__ == "__main__":
    sys.exit(main())
