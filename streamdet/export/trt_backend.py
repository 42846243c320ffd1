"""The TensorRT backend: engines from `engines/`, checked against this GPU, TensorRT, checkpoint and config."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from .artifacts import Artifact, load_artifact
from .errors import BackendError
from .tensorrt_build import gpu_name, require_cuda, require_tensorrt

if TYPE_CHECKING:
    from ..detector import Detector


class _Engine:
    """One deserialized engine and its execution context, run on torch's current CUDA stream."""

    def __init__(self, trt: ModuleType, artifact: Artifact, device: torch.device) -> None:
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        with torch.cuda.device(device):
            self.engine = self.runtime.deserialize_cuda_engine(artifact.data)
            if self.engine is None:
                raise BackendError(f"{artifact.path}: TensorRT cannot deserialize this engine")
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
        self.precision = noise.meta["precision"]
        self.student_precision = student.meta["precision"]
        self._noise = _Engine(trt, noise, device)
        self._student = _Engine(trt, student, device)

    @classmethod
    def load(cls, detector: "Detector", checkpoints: tuple[Path, Path], engines: Path, precision: str, student_precision: str) -> "TensorRTBackend":
        """Load and check both engines for this detector's GPU, TensorRT version, checkpoints and config."""
        version = require_tensorrt().__version__
        if detector.device.type != "cuda":
            raise BackendError(f"the tensorrt backend needs a CUDA GPU, this run uses {detector.device} (use --device cuda)")
        device = require_cuda(detector.device)
        gpu = gpu_name(device)
        noise = load_artifact(detector.config, "tensorrt", "noise", precision, checkpoints, engines, version, gpu)
        student = load_artifact(detector.config, "tensorrt", "student", student_precision, checkpoints, engines, version, gpu)
        return cls(noise, student, device)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the noise engine."""
        return self._noise(x)

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits from the student engine."""
        return self._student(x, eps)
