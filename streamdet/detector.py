"""`Detector`: preprocess → backend (first-step noise → student), batched, on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .config import Config, load_config, with_overrides
from .crops import Box, FaceFinder, crop_boxes
from .device import pick_device
from .models.noise import FirstStepNoise, load_noise_model
from .models.student import Student, load_student
from .preprocess import preprocess, preprocess_boxes
from .runtime import AdaptiveBatch, Backend, make_backend
from .runtime.artifacts import DEFAULT_ENGINES
from .runtime.eager import TorchBackend
from .runtime.factory import precisions
from .upload import FrameUploader, PendingScores
from .weights import Progress, resolve


class Detector:
    """Scores frames with DistilDIRE: P(fake) from a student reading the frame and its first-step noise."""

    def __init__(self, backend: Backend, config: Config, batch: AdaptiveBatch | None = None) -> None:
        self.config = config
        self.backend = backend
        self.device = backend.device
        self.image_size = config.adm.image_size
        self.batch = batch or AdaptiveBatch(config.batch)
        self.uploader = FrameUploader(self.device)
        self.faces = FaceFinder()

    @property
    def precision(self) -> str:
        """The precision the noise model runs at (the student's is `backend.student_precision`)."""
        return self.backend.precision

    @classmethod
    def from_models(cls, noise_model: FirstStepNoise, student: Student, config: Config) -> "Detector":
        """An eager (torch backend) detector around models already built, on the config's device and precision."""
        device = pick_device(config.device)
        precision, _ = precisions("torch", config, device, None)
        return cls(TorchBackend(noise_model, student, device, precision, config.channels_last), config)

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
        """Build from a config (object, name or path) and checkpoints (registry names or files).

        `backend` runs the models: torch (eager) or compile build them from the checkpoints (downloaded if
        needed); onnxruntime or tensorrt run the files exported into `engines` (`student_precision` int8
        picks the quantized student) and only check them against the checkpoints, never loading these.
        """
        if not isinstance(config, Config):
            config = load_config(config)
        config = with_overrides(config, device=device, precision=precision, batch=batch)
        specs = (adm or config.weights.adm, student or config.weights.student)

        def models() -> tuple[nn.Module, nn.Module]:
            adm_path = resolve(specs[0], progress("ADM") if progress else None)
            student_path = resolve(specs[1], progress("student") if progress else None)
            return load_noise_model(config.adm, adm_path), load_student(student_path)

        chunks = AdaptiveBatch(config.batch)
        runner = make_backend(backend, config, pick_device(config.device), chunks, models, specs, engines, student_precision)
        return cls(runner, config, chunks)

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 RGB frames (N×H×W×3, or a list of H×W×3 of any sizes) → N×3×S×S in [-1, 1] on the device."""
        return preprocess(frames, self.image_size, self.device, self.uploader)

    def preprocess_crops(self, frames: Sequence[np.ndarray], mode: str) -> tuple[torch.Tensor, list[tuple[str, list[Box]]]]:
        """The crops of each frame in `mode` (cover, faces; see `streamdet.crops`) as one batch, and each frame's (kind, boxes)."""
        layout = [crop_boxes(frame, mode, self.faces) for frame in frames]
        return preprocess_boxes(frames, [boxes for _, boxes in layout], self.image_size, self.device), layout

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

    def score_async(self, x: torch.Tensor) -> PendingScores:
        """P(fake) per preprocessed frame, queued on the device: the host reads them with `.result()` when it needs them."""
        return PendingScores(torch.sigmoid(self.logits(x)))
