"""INT8 (and FP8) for the student and the ADM's noise model: post-training static quantization calibrated on the user's frames.

The result is an ONNX graph with QuantizeLinear/DequantizeLinear pairs (symmetric int8 or fp8 E4M3, per-channel
weights, activation ranges from the calibration frames): ONNX Runtime runs the int8 graph as it is, and TensorRT
builds either as an explicitly quantized network, so both runtimes share one calibration.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import ExportError, MediaError
from ..train.dataset import LABELS, load_items
from ..video import Sampling, expand_inputs, iter_frames
from .onnx_export import external_data

if TYPE_CHECKING:
    from ..detector import Detector

log = logging.getLogger("streamdet")

MAX_FRAMES_PER_VIDEO = 8


def calibration_files(folder: Path) -> list[str]:
    """The files to calibrate on, in a fixed random order so that any prefix spans the whole folder.

    A frame dataset (with `real/` and `fake/`) gives its images only, never its eps/DIRE caches.
    """
    if any((folder / label).is_dir() for label in LABELS):
        paths = [str(folder / item.path) for item in load_items(folder)]
    else:
        paths = [item.path for item in expand_inputs([folder]) if item.kind != "error"]
    if not paths:
        raise ExportError(f"{folder}: no images or videos to calibrate on")
    random.Random(0).shuffle(paths)
    return paths


def _frames(folder: Path, limit: int) -> Iterator[np.ndarray]:
    """Up to `limit` RGB frames, spread over as many of the images and videos under `folder` as `limit` allows
    (a video gives limit / files frames, at least 1 and at most 8); unreadable files are skipped with a warning."""
    paths = calibration_files(folder)
    per_video = min(MAX_FRAMES_PER_VIDEO, max(1, -(-limit // len(paths))))
    count = 0
    for path in paths:
        try:
            for frame in iter_frames(path, Sampling(mode="uniform", frames=per_video)):
                yield frame.image
                count += 1
                if count == limit:
                    return
        except MediaError as exc:
            log.warning("calibration: skipping %s", exc)


def calibration_inputs(detector: "Detector", folder: Path, limit: int, batch: int, eps: bool = True) -> list[dict[str, np.ndarray]]:
    """The inputs for up to `limit` frames under `folder`, in batches: preprocessed `x` (the noise model's) and,
    with `eps`, its eps (the student's)."""
    batches: list[dict[str, np.ndarray]] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        x = detector.preprocess(pending)
        inputs = {"x": x.cpu().numpy()}
        if eps:
            inputs["eps"] = detector.noise(x).cpu().numpy()
        batches.append(inputs)
        pending.clear()

    for frame in _frames(folder, limit):
        pending.append(frame)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if not batches:
        raise ExportError(f"{folder}: no frame could be read to calibrate on")
    log.info("calibration: %d frames from %s", sum(len(b["x"]) for b in batches), folder)
    return batches


INT8_LAYOUTS = {
    "s8s8-qdq": "minmax, symmetric int8 activations and weights (QDQ, as TensorRT needs)",
    "u8s8-qoperator": "minmax, unsigned asymmetric int8 activations, 7-bit symmetric weights (QOperator, ONNX Runtime's CPU kernels)",
}


def quantize_graph(src: Path, dst: Path, batches: list[dict[str, np.ndarray]], precision: str = "int8", layout: str = "s8s8-qdq") -> None:
    """Quantize the fp32 ONNX graph at `src` to `precision` (int8, or fp8 E4M3 for TensorRT) at `dst`: Conv, Gemm and
    MatMul, per-channel weights; activation ranges over `batches` (min/max for int8; the distribution for fp8, as ONNX
    Runtime requires). int8 comes in one of `INT8_LAYOUTS`: symmetric signed QDQ (TensorRT's), or U8S8 QOperator with
    7-bit weights, which ONNX Runtime runs faster on a CPU at a lower eps error (benchmarks/bench_int8_adm.py: u8×s8
    pair sums saturate at 16 bits on CPUs without VNNI unless the weights keep to 7 bits).

    `dst` is in the exporter's staging folder, published by an atomic rename once complete."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    if layout not in INT8_LAYOUTS:
        raise ExportError(f"int8 layout {layout!r}: must be one of {', '.join(INT8_LAYOUTS)}")
    cpu = precision == "int8" and layout == "u8s8-qoperator"
    kind = QuantType.QInt8 if precision == "int8" else QuantType.QFLOAT8E4M3FN
    prepared = dst.with_name(f".{dst.name}.pre.onnx")
    prepared_data = external_data(prepared)
    # A graph over 2 GB (the full-size ADM in fp32) keeps its weights in `<file>.data`: its pre-processed copy must
    # too, under its own name, or ONNX Runtime's optimizer leaves it pointing at a file in a deleted temporary folder.
    external = external_data(src).exists()
    try:
        quant_pre_process(
            str(src), str(prepared), skip_symbolic_shape=True, save_as_external_data=external,
            all_tensors_to_one_file=True, external_data_location=prepared_data.name if external else None,
        )
        quantize_static(
            str(prepared),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QOperator if cpu else QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            per_channel=True,
            reduce_range=cpu,
            activation_type=QuantType.QUInt8 if cpu else kind,
            weight_type=kind,
            calibrate_method=CalibrationMethod.MinMax if precision == "int8" else CalibrationMethod.Distribution,
            extra_options={"ActivationSymmetric": not cpu, "WeightSymmetric": True},
        )
    finally:
        prepared.unlink(missing_ok=True)
        prepared_data.unlink(missing_ok=True)
