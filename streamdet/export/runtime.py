"""Backends: what runs the noise model and the student for a `Detector` (eager, compiled, ONNX Runtime, TensorRT).

A backend takes preprocessed frames `x` (N×3×S×S float32 on the detector's device) and gives
`noise(x)` (eps, same shape, float32) and `logits(x, eps)` ((N,), float32).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import torch

from .artifacts import DEFAULT_ENGINES, load_artifact
from .errors import BackendError

if TYPE_CHECKING:
    from ..detector import Detector

log = logging.getLogger("streamdet")

BACKENDS = ("torch", "compile", "onnxruntime", "tensorrt")


class Backend(Protocol):
    """Runs the two models on preprocessed frames."""

    name: str
    precision: str
    student_precision: str
    warmup_s: float | None

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """First-step eps for `x`: same shape, float32, on x's device."""

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Student logits (N,), float32, on x's device."""


_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for `precision` fp16/bf16 on `device`; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


class TorchBackend:
    """Eager PyTorch: the detector's own modules, under autocast (fp16/bf16) and its memory layout."""

    name = "torch"
    warmup_s: float | None = None

    def __init__(self, detector: "Detector") -> None:
        self.detector = detector
        self.precision = self.student_precision = detector.precision
        self.noise_model = detector.noise_model
        self.student = detector.student

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision at the backend's precision; nothing for fp32."""
        return autocast(self.detector.device, self.precision)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """`x` on the device, channels-last where the models are."""
        x = x.to(self.detector.device)
        return x.contiguous(memory_format=torch.channels_last) if self.detector.channels_last else x

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the noise model; the eps arithmetic itself runs in fp32 (see FirstStepNoise)."""
        with self.autocast():
            return self.noise_model(self.layout(x))

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The student's logits in float32."""
        with self.autocast():
            return self.student(self.layout(x), self.layout(eps)).float()


class CompileBackend(TorchBackend):
    """torch.compile of both models (CUDA graphs on GPUs), warmed up once, before any frame is timed.

    Every call is padded to the detector's batch size, so one compiled shape (and one CUDA graph)
    serves all batches, the last partial one included.
    """

    name = "compile"

    def __init__(self, detector: "Detector", mode: str | None = None, compiler: str = "inductor") -> None:
        super().__init__(detector)
        cuda = detector.device.type == "cuda"
        self.mode = mode if mode is not None else ("reduce-overhead" if cuda else None)
        self.cuda = cuda
        self.noise_model = torch.compile(detector.noise_model, mode=self.mode, backend=compiler, dynamic=False)
        self.student = torch.compile(detector.student, mode=self.mode, backend=compiler, dynamic=False)

    def _fixed(self, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
        n = inputs[0].shape[0]
        pad = max(0, self.detector.batch.size - n)
        # Always new tensors made here, under inference mode: the compiled code is guarded on that kind of tensor.
        inputs = tuple(torch.cat([t, t[-1:].expand(pad, *t.shape[1:])]) for t in inputs)
        if self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        return fn(*inputs)[:n].clone()

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """eps from the compiled noise model."""
        return self._fixed(super().noise, x)

    def logits(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Logits from the compiled student."""
        return self._fixed(super().logits, x, eps)

    @torch.inference_mode()
    def warm_up(self) -> float:
        """Compile (and record CUDA graphs) at the detector's batch size; returns and logs how long it took."""
        size, image = self.detector.batch.size, self.detector.image_size
        x = torch.rand(size, 3, image, image, generator=torch.Generator().manual_seed(0)).to(self.detector.device) * 2 - 1
        started = time.perf_counter()
        for _ in range(3 if self.cuda else 1):
            self.logits(x, self.noise(x))
        if self.cuda:
            torch.cuda.synchronize(self.detector.device)
        self.warmup_s = time.perf_counter() - started
        log.info("torch.compile warm-up (batch %d, mode %s): %.1f s", size, self.mode or "default", self.warmup_s)
        return self.warmup_s


def _precisions(name: str, detector: "Detector", student_precision: str | None) -> tuple[str, str]:
    """The noise and student precisions a backend runs at (ONNX Runtime: fp16 on GPUs, as it has no bf16 kernels)."""
    precision = detector.precision
    if name == "onnxruntime" and detector.config.precision == "auto":
        precision = "fp16" if detector.device.type == "cuda" else "fp32"
    if name in ("torch", "compile") and student_precision not in (None, precision):
        raise BackendError(f"a {student_precision} student beside a {precision} noise model needs --backend onnxruntime or tensorrt, not {name}")
    return precision, student_precision or precision


def make_backend(
    name: str,
    detector: "Detector",
    checkpoints: tuple[Path, Path] | None = None,
    engines: str | Path = DEFAULT_ENGINES,
    student_precision: str | None = None,
) -> Backend:
    """The backend called `name` for `detector`; exported backends load and check their files in `engines`."""
    if name not in BACKENDS:
        raise BackendError(f"{name}: unknown backend (choose {', '.join(BACKENDS)})")
    precision, student_precision = _precisions(name, detector, student_precision)
    if name == "torch":
        return TorchBackend(detector)
    if name == "compile":
        backend = CompileBackend(detector)
        backend.warm_up()
        return backend
    if checkpoints is None:
        raise BackendError(f"the {name} backend checks its files against the checkpoints: load the detector with Detector.load")
    engines = Path(engines)
    if name == "onnxruntime":
        from .ort_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(
            load_artifact(detector.config, "onnx", "noise", precision, checkpoints, engines),
            load_artifact(detector.config, "onnx", "student", student_precision, checkpoints, engines),
            detector.device,
        )
    from .trt_backend import TensorRTBackend

    return TensorRTBackend.load(detector, checkpoints, engines, precision, student_precision)
