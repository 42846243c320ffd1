"""The int8 ADM on a CPU: ONNX Runtime's quantization formats against fp32 at the same inputs, one thread.

Exports the noise model (random weights in the official ADM format, `--config`'s architecture) as fp32 ONNX and as
streamdet's int8 graph (`export --model noise --precision int8`), then quantizes the same fp32 graph with the same
calibration batches in the other layouts: symmetric signed int8 activations and weights as QDQ (S8S8, TensorRT's
layout, and what `export` wrote for ONNX Runtime before), and ONNX Runtime's U8S8 (unsigned asymmetric
activations, signed symmetric per-channel weights) in QDQ and in QOperator form, each with 8-bit and with 7-bit
weights (reduce_range). The CPU's flags (VNNI or not) are printed: without VNNI, ONNX
Runtime's u8×s8 kernels sum pairs in 16 bits with saturation. Each is run by
ONNX Runtime on one thread (batch 1, rounds in turn so that load changes hit all alike); its eps is compared with
the fp32 graph's on held-out frames (mean and max |Δeps|, and the mean relative to mean |eps|).

    OMP_NUM_THREADS=1 python benchmarks/bench_int8_adm.py                       # tiny config, a few minutes
    OMP_NUM_THREADS=1 python benchmarks/bench_int8_adm.py --config default --frames 2 --repeats 2   # full size (slow)
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamdet.config import load_config  # noqa: E402
from streamdet.detector import Detector  # noqa: E402
from streamdet.export.exporter import export_models  # noqa: E402
from streamdet.export.metadata import BatchRange  # noqa: E402
from streamdet.export.quantize import calibration_inputs, quantize_graph  # noqa: E402
from streamdet.models.noise import load_noise_model  # noqa: E402
from streamdet.models.student import load_student  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402
from tests.trainingdata import make_image_dataset  # noqa: E402


def ort_quantize(src: Path, dst: Path, batches: list[dict[str, np.ndarray]], fmt: str, reduce_range: bool) -> None:
    """U8S8 static quantization of `src` (Conv, Gemm, MatMul; MinMax ranges over `batches`), as QDQ or QOperator; with
    `reduce_range`, 7-bit weights (ONNX Runtime's advice for CPUs without VNNI, whose u8×s8 pair sums saturate at 16 bits)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    prepared = dst.with_name(dst.stem + ".pre.onnx")
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator,
                    op_types_to_quantize=["Conv", "Gemm", "MatMul"], per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range, extra_options={"WeightSymmetric": True})


def session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--calibration-frames", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8, help="held-out frames: eps error, and the timed inputs")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds over the held-out frames")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    config = dataclasses.replace(load_config(args.config), batch=1)  # batch 1 throughout: the graphs are exported for it
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        adm, student = save_adm(tmp / "adm.pt", config.adm), save_student(tmp / "student.pth", random_student(seed=1))
        calib = make_image_dataset(tmp / "calib", args.calibration_frames // 2, {"gen": args.calibration_frames - args.calibration_frames // 2}, size=config.adm.image_size, seed=1)
        held = make_image_dataset(tmp / "held", args.frames // 2, {"gen": args.frames - args.frames // 2}, size=config.adm.image_size, seed=2)
        one = BatchRange.around(1, 1, 1, 1)
        (fp32,) = export_models(config, "onnx", "fp32", one, tmp / "fp32", adm=adm, student=student, models=["noise"])
        start = time.perf_counter()
        (exported,) = export_models(config, "onnx", "int8", one, tmp / "int8", adm=adm, student=student, models=["noise"], calibrate=calib,
                                calibration_frames=args.calibration_frames)
        print(f"streamdet int8 export + calibration: {time.perf_counter() - start:.0f} s")
        detector = Detector.from_models(load_noise_model(config.adm, adm), load_student(student), config)
        batches = calibration_inputs(detector, calib, args.calibration_frames, 1, eps=False)
        graphs = {"fp32": fp32, "int8 S8S8 QDQ (TensorRT's; ONNX Runtime's before)": tmp / "s8s8.onnx"}
        quantize_graph(fp32, graphs["int8 S8S8 QDQ (TensorRT's; ONNX Runtime's before)"], batches, "int8", "s8s8-qdq")
        for fmt in ("QDQ", "QOperator"):
            for reduce_range in (False, True):
                name = f"int8 U8S8 {fmt}{', 7-bit weights (reduce_range)' if reduce_range else ''}"
                graphs[name] = tmp / f"u8s8-{fmt}-{reduce_range}.onnx"
                ort_quantize(fp32, graphs[name], batches, fmt, reduce_range)
        graphs["streamdet export --precision int8 (now)"] = exported
        inputs = [b["x"] for b in calibration_inputs(detector, held, args.frames, 1, eps=False)]
        sessions = {name: session(path, args.threads) for name, path in graphs.items()}
        name_in = {name: s.get_inputs()[0].name for name, s in sessions.items()}
        eps = {name: [s.run(None, {name_in[name]: x})[0] for x in inputs] for name, s in sessions.items()}
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.repeats):
            for name, s in sessions.items():
                for x in inputs:
                    t = time.perf_counter()
                    s.run(None, {name_in[name]: x})
                    times[name].append(time.perf_counter() - t)
        base = statistics.median(times["fp32"])
        scale = float(np.mean([np.abs(e).mean() for e in eps["fp32"]]))
        print(f"bench_int8_adm: {args.config} config ({config.adm.image_size}² ADM, random weights), ONNX Runtime CPU, {args.threads} thread(s), batch 1, "
              f"{args.calibration_frames} calibration frames, {len(inputs)} held-out frames × {args.repeats} rounds, load average before {load:.1f}, after {os.getloadavg()[0]:.1f}")
        flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
        print(f"CPU int8 instructions: {', '.join(f for f in ('avx2', 'avx_vnni', 'avx512_vnni', 'amx_int8') if f in flags) or 'unknown'}")
        print()
        print("| graph | ms/frame (median) | vs fp32 | file MB | mean abs Δeps | max abs Δeps | mean abs Δeps / mean abs eps |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in sessions:
            ms = 1000 * statistics.median(times[name])
            gaps = np.concatenate([np.abs(a - b).ravel() for a, b in zip(eps[name], eps["fp32"])])
            print(f"| {name} | {ms:.1f} | {base * 1000 / ms:.2f}× | {graphs[name].stat().st_size / 1e6:.1f} | {gaps.mean():.4f} | {gaps.max():.3f} | {gaps.mean() / scale:.3f} |")


if __name__ == "__main__":
    main()
