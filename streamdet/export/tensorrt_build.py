"""Build a TensorRT engine from an exported ONNX graph."""

from __future__ import annotations

from pathlib import Path

from ..errors import ExportError
from ..runtime.trt import require_tensorrt
from .metadata import BatchRange


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
