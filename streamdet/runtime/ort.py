"""The ONNX Runtime backend: the exported graphs on the CPU or CUDA execution provider, fed torch tensors in place."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch

from ..errors import BackendError
from .artifacts import Artifact

INSTALL = "pip install 'streamdet[onnx]' (for GPUs also onnxruntime-gpu)"


def require_onnxruntime() -> ModuleType:
    """The `onnxruntime` module, or a one-line error that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise BackendError(f"ONNX Runtime is not installed: {INSTALL}") from None
    return onnxruntime


def _providers(ort: ModuleType, device: torch.device) -> list:
    """CUDA (sharing torch's stream, so no extra synchronisation) on GPUs, else the CPU."""
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendError("this onnxruntime has no CUDA execution provider: pip install onnxruntime-gpu, or use --device cpu")
    stream = torch.cuda.current_stream(device).cuda_stream
    options = {"device_id": device.index or 0, "user_compute_stream": str(stream)}
    return [("CUDAExecutionProvider", options)]


class _Session:
    """One exported graph: binds input and output torch tensors by address (no copies on either provider)."""

    def __init__(self, ort: ModuleType, artifact: Artifact, providers: list, device: torch.device) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if device.type == "cpu":
            options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch (OMP_NUM_THREADS) uses
        try:
            self.session = ort.InferenceSession(str(artifact.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types, all of them "cannot load"
            raise BackendError(f"{artifact.path}: ONNX Runtime cannot load it ({str(exc).strip().splitlines()[0]}); rebuild it: {artifact.rebuild}") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name
        self.device = device
        self.device_type = "cuda" if device.type == "cuda" else "cpu"
        self.device_id = device.index or 0

    def __call__(self, output_shape: tuple[int, ...], *inputs: torch.Tensor) -> torch.Tensor:
        binding = self.session.io_binding()
        inputs = tuple(t.to(self.device, torch.float32).contiguous() for t in inputs)
        for name, tensor in zip(self.inputs, inputs, strict=True):
            binding.bind_input(name, self.device_type, self.device_id, np.float32, tuple(tensor.shape), tensor.data_ptr())
        out = torch.empty(output_shape, dtype=torch.float32, device=self.device)
        binding.bind_output(self.output, self.device_type, self.device_id, np.float32, output_shape, out.data_ptr())
        self.session.run_with_iobinding(binding)
        return out


class OnnxRuntimeBackend:
    """Runs `noise-<precision>.onnx` and `student-<precision>.onnx` with ONNX Runtime."""

    name = "onnxruntime"
    warmup_s: float | None = None

    def __init__(self, noise: Artifact, student: Artifact, device: torch.device) -> None:
        ort = require_onnxruntime()
        providers = _providers(ort, device)
        self.device = device
        self.precision = noise.meta["precision"]
        self.student_precision = student.meta["precision"]
        self._noise = _Session(ort, noise, providers, device)
        self._student = _Session(ort, student, providers, device)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the exported noise model."""
        return self._noise(tuple(x.shape), x)

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits from the exported student."""
        return self._student((x.shape[0],), x, eps)
