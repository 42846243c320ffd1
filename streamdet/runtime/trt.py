"""The TensorRT backend: engines from `engines/`, checked against this GPU, TensorRT, checkpoint and config."""

from __future__ import annotations

from types import ModuleType

import torch

from ..errors import BackendError
from .artifacts import Artifact

INSTALL = "pip install 'streamdet[tensorrt]' --extra-index-url https://pypi.nvidia.com (needs an NVIDIA GPU and driver)"


def require_tensorrt() -> ModuleType:
    """The `tensorrt` module, or a one-line error that says how to install it."""
    try:
        import tensorrt
    except ImportError:
        raise BackendError(f"TensorRT is not installed: {INSTALL}") from None
    return tensorrt


def require_cuda(device: torch.device) -> torch.device:
    """The CUDA device TensorRT will use; a one-line error that says what would work when there is none."""
    if not torch.cuda.is_available():
        raise BackendError("TensorRT runs only on an NVIDIA GPU and this machine has no usable one; here, use ONNX instead (export --format onnx, --backend onnxruntime) or --backend torch or compile")
    if device.type != "cuda":
        raise BackendError(f"TensorRT runs only on an NVIDIA GPU and this run uses {device}; use --device cuda (or auto)")
    return device


def gpu_name(device: torch.device) -> str:
    """The GPU's name as the CUDA driver reports it, which an engine is tied to."""
    return torch.cuda.get_device_name(device)


class _Engine:
    """One deserialized engine and its execution context, run on torch's current CUDA stream."""

    def __init__(self, trt: ModuleType, artifact: Artifact, device: torch.device) -> None:
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        with torch.cuda.device(device):
            self.engine = self.runtime.deserialize_cuda_engine(artifact.path.read_bytes())
            if self.engine is None:
                raise BackendError(f"{artifact.path}: TensorRT cannot deserialize this engine; rebuild it: {artifact.rebuild}")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.max_batch = int(artifact.meta["batch"]["max"])
        self.path = artifact.path
        self.device = device

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The output for inputs of any batch size (in pieces of at most the engine's max batch)."""
        pieces = [self._run(*(t[i : i + self.max_batch] for t in inputs)) for i in range(0, inputs[0].shape[0], self.max_batch)]
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def _run(self, *inputs: torch.Tensor) -> torch.Tensor:
        inputs = tuple(t.to(self.device, torch.float32).contiguous() for t in inputs)
        for name, tensor in zip(self.inputs, inputs, strict=True):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=torch.float32, device=self.device)
        self.context.set_tensor_address(self.output, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise BackendError(f"{self.path}: TensorRT failed to run the engine")
        return out


class TensorRTBackend:
    """Runs `noise-<precision>.engine` and `student-<precision>.engine` with TensorRT."""

    name = "tensorrt"
    warmup_s: float | None = None

    def __init__(self, noise: Artifact, student: Artifact, device: torch.device) -> None:
        trt = require_tensorrt()
        self.device = device
        self.precision = noise.meta["precision"]
        self.student_precision = student.meta["precision"]
        self._noise = _Engine(trt, noise, device)
        self._student = _Engine(trt, student, device)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the noise engine."""
        return self._noise(x)

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits from the student engine."""
        return self._student(x, eps)
