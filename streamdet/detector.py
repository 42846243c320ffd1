"""`Detector`: preprocess → first-step noise → student, batched, on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .batching import AdaptiveBatch
from .config import Config, load_config, with_overrides
from .errors import ConfigError
from .export.runtime import DEFAULT_ENGINES, Backend, TorchBackend, make_backend
from .models.adm import load_adm
from .models.noise import FirstStepNoise, freeze_timestep
from .models.student import Student, load_student
from .pipeline import FileResult, scan
from .preprocess import preprocess
from .weights import Progress, resolve

def pick_device(name: str) -> torch.device:
    """`auto` → the first CUDA GPU if there is one, else the CPU; anything else must be usable here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{name}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{name}: no such GPU ({torch.cuda.device_count()} present)")
    elif device.type != "cpu":
        raise ConfigError(f"{name}: unsupported device type (use auto, cpu, cuda or cuda:N)")
    return device


def pick_precision(name: str, device: torch.device) -> str:
    """`auto` → bf16 on GPUs that have it (fp16 on older ones), fp32 on the CPU."""
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class Detector:
    """Scores frames with DistilDIRE: P(fake) from a student reading the frame and its first-step noise."""

    def __init__(self, noise_model: FirstStepNoise, student: Student, config: Config) -> None:
        self.config = config
        self.device = pick_device(config.device)
        self.precision = pick_precision(config.precision, self.device)
        self.image_size = config.adm.image_size
        self.noise_model = noise_model.to(self.device).eval().requires_grad_(False)
        self.student = student.to(self.device).eval().requires_grad_(False)
        self.channels_last = config.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.noise_model.to(memory_format=torch.channels_last)
            self.student.to(memory_format=torch.channels_last)
        self.batch = AdaptiveBatch(config.batch)
        self.backend: Backend = TorchBackend(self)

    @classmethod
    def load(
        cls,
        config: Config | str | Path | None = None,
        adm: str | Path | None = None,
        student: str | Path | None = None,
        device: str | None = None,
        precision: str | None = None,
        batch: int | None = None,
        progress: Callable[[str], Progress] | None = None,
        backend: str = "torch",
        engines: str | Path = DEFAULT_ENGINES,
        student_precision: str | None = None,
    ) -> "Detector":
        """Build from a config (object, name or path) and checkpoints (registry names or files; downloaded if needed).

        `backend` runs the models: torch (eager), compile, onnxruntime or tensorrt (files exported into
        `engines`; `student_precision` int8 picks the quantized student).
        """
        if not isinstance(config, Config):
            config = load_config(config)
        config = with_overrides(config, device=device, precision=precision, batch=batch)
        adm_path = resolve(adm or config.weights.adm, progress("ADM") if progress else None)
        student_path = resolve(student or config.weights.student, progress("student") if progress else None)
        unet = freeze_timestep(load_adm(config.adm, adm_path))
        detector = cls(FirstStepNoise(unet, config.adm), load_student(student_path), config)
        detector.use_backend(make_backend(backend, detector, (adm_path, student_path), engines, student_precision))
        return detector

    def use_backend(self, backend: Backend) -> None:
        """Run the models with `backend` from now on (see `streamdet.export.make_backend`)."""
        self.backend = backend
        self.precision = backend.precision

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 RGB frames (N×H×W×3, or a list of H×W×3 of any sizes) → N×3×S×S in [-1, 1] on the device."""
        return preprocess(frames, self.image_size, self.device)

    @torch.inference_mode()
    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.noise(x)

    @torch.inference_mode()
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.logits(x, self.backend.noise(x))

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """First-step eps for preprocessed frames: same shape as `x`, float32, on the device."""
        return self.batch.run(self._noise, x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Student logits (N,) for preprocessed frames."""
        return self.batch.run(self._logits, x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """P(fake) per preprocessed frame, (N,) float32 on the CPU."""
        return torch.sigmoid(self.logits(x)).cpu()

    def scan(self, path: str | Path, **options) -> FileResult:
        """Scan one video or image file (options as in `streamdet.pipeline.scan`) and return its result."""
        return scan(self, [path], **options)[0]

