"""Choose and build the backend a run asks for: eager models for torch/compile, exported files for the others."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..config import Config
from ..device import QUANTIZED, pick_precision, require_fp8
from ..errors import BackendError
from .artifacts import DEFAULT_ENGINES, load_artifact
from .base import BACKENDS, REGISTRY, Backend, BackendSpec
from .batching import AdaptiveBatch

Models = Callable[[], tuple[nn.Module, nn.Module]]


def precisions(name: str, config: Config, device: torch.device, student_precision: str | None) -> tuple[str, str]:
    """The noise and student precisions `name` runs at (ONNX Runtime: fp16 on GPUs for `auto`, as it has no bf16 kernels).

    A quantized noise model (int8: onnxruntime or tensorrt; fp8: tensorrt on compute capability ≥ 8.9) comes with an
    int8 student for int8 and an fp16 one for fp8, unless `student_precision` says otherwise."""
    spec = backend_spec(name)
    if config.precision in QUANTIZED:
        return _quantized(spec, config.precision, device), student_precision or ("int8" if config.precision == "int8" else "fp16")
    precision = pick_precision(config.precision, device)
    if name == "onnxruntime" and config.precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if spec.eager and student_precision not in (None, precision):
        exported = " or ".join(s.name for s in REGISTRY.values() if not s.eager)
        raise BackendError(f"a {student_precision} student beside a {precision} noise model needs --backend {exported}, not {name}")
    return precision, student_precision or precision


def backend_spec(name: str) -> BackendSpec:
    """The registered backend called `name`, or a one-line error listing them."""
    if name not in REGISTRY:
        raise BackendError(f"{name}: unknown backend (choose {', '.join(BACKENDS)})")
    return REGISTRY[name]


def _quantized(spec: BackendSpec, precision: str, device: torch.device) -> str:
    """Check that backend `spec` on `device` can run a noise model quantized to `precision`."""
    able = " or ".join(s.name for s in REGISTRY.values() if precision in s.quantized)
    if spec.eager:
        raise BackendError(
            f"--precision {precision} runs a quantized ADM from exported files: `streamdet export --model noise --precision {precision} "
            f"--calibrate FRAMES`, then --backend {able}, not {spec.name}"
        )
    if precision not in spec.quantized:
        raise BackendError(f"--precision {precision} runs on --backend {able} only, not {spec.name}")
    if precision == "fp8":
        require_fp8(device)
    return precision


def make_backend(
    name: str,
    config: Config,
    device: torch.device,
    batch: AdaptiveBatch,
    models: Models,
    checkpoints: tuple[str | Path, str | Path],
    engines: str | Path = DEFAULT_ENGINES,
    student_precision: str | None = None,
) -> Backend:
    """The backend called `name`: torch and compile call `models()` for the (noise model, student) to run;
    onnxruntime and tensorrt load the files exported into `engines`, checked against `checkpoints` (names or files)
    from their metadata alone, and never build the eager models."""
    precision, student_precision = precisions(name, config, device, student_precision)
    if name == "torch":
        from .eager import TorchBackend

        return TorchBackend(*models(), device, precision, config.channels_last)
    if name == "compile":
        from .compiled import CompileBackend

        backend = CompileBackend(*models(), device, precision, batch, config.adm.image_size, config.channels_last)
        backend.warm_up()
        return backend
    engines = Path(engines)
    if name == "onnxruntime":
        from .ort import OnnxRuntimeBackend, require_onnxruntime

        require_onnxruntime()
        noise = load_artifact(config, "onnx", "noise", precision, checkpoints, engines)
        student = load_artifact(config, "onnx", "student", student_precision, checkpoints, engines)
        return OnnxRuntimeBackend(noise, student, device)
    from .trt import TensorRTBackend, gpu_name, require_cuda, require_tensorrt

    version = require_tensorrt().__version__
    device = require_cuda(device)
    gpu = gpu_name(device)
    noise = load_artifact(config, "tensorrt", "noise", precision, checkpoints, engines, version, gpu)
    student = load_artifact(config, "tensorrt", "student", student_precision, checkpoints, engines, version, gpu)
    return TensorRTBackend(noise, student, device)
