"""Build a TensorRT engine from an exported ONNX graph, and the facts an engine is tied to (version, GPU)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

from .artifacts import BatchRange
from .errors import BackendError, ExportError

INSTALL = "pip install 'streamdet[tensorrt]' (needs an NVIDIA GPU and driver)"


def require_tensorrt() -> ModuleType:
    """The `tensorrt` module, or a one-line error that says how to install it."""
    try:
        import tensorrt
    except ImportError:
        raise BackendError(f"TensorRT is not installed: {INSTALL}") from None
    return tensorrt


def require_cuda(device: torch.device | None = None) -> torch.device:
    """The CUDA device TensorRT will use, or a one-line error when there is none."""
    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs a CUDA GPU and there is none here")
    if device is None or device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device


def gpu_name(device: torch.device) -> str:
    """The GPU's name as the CUDA driver reports it, which an engine is tied to."""
    return torch.cuda.get_device_name(device)


def build_engine(onnx_path: Path, inputs: tuple[str, ...], size: int, batch: BatchRange, workspace_gib: float = 8.0) -> bytes:
    """A serialized engine for the ONNX graph with one optimisation profile over `batch`.

    The network is strongly typed: layer precisions are those of the ONNX graph (fp32/fp16/bf16, or
    int8 where the graph has Q/DQ pairs), so TensorRT keeps the mixed-precision plan of the export.
    """
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly_typed is None else 1 << int(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"{onnx_path}: TensorRT cannot parse the graph: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    profile = builder.create_optimization_profile()
    for name in inputs:
        profile.set_shape(name, (batch.min, 3, size, size), (batch.opt, 3, size, size), (batch.max, 3, size, size))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{onnx_path}: TensorRT could not build an engine (its messages above say why)")
    return bytes(serialized)
