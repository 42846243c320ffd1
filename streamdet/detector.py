"""`Detector`: preprocess → backend (first-step noise → student, or DIRE → its classifier), batched, on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .config import Config, load_config
from .crops import Box, FaceFinder, crop_boxes
from .device import pick_device
from .errors import BackendError, ConfigError
from .models.adm import load_adm
from .models.dire import DIRE, load_dire_classifier
from .models.noise import FirstStepNoise
from .models.student import Student, load_student
from .preprocess import Inputs, for_rule, one_or_each, preprocess_each
from .runtime import AdaptiveBatch, Backend, make_backend
from .runtime.dire import DIREBackend
from .runtime.eager import TorchBackend
from .runtime.base import REGISTRY
from .runtime.factory import backend_spec, precisions
from .upload import FrameUploader, PendingScores
from .video.frame import YuvImage
from .weights import Progress, resolve_all

METHODS = ("distildire", "dire")
CHOICES = (*METHODS, "both")


class Detector:
    """Scores frames with one method, or several side by side: P(fake) per frame from DistilDIRE (a student reading
    the frame and its first-step noise) and/or DIRE (a classifier reading the DDIM reconstruction error).

    `method` names the primary method (its scores are `score`'s); `extra` backends are further methods that
    `scores` runs on the same frames, for a second opinion.
    """

    def __init__(
        self,
        backend: Backend,
        config: Config,
        batch: AdaptiveBatch | None = None,
        method: str = "distildire",
        extra: Mapping[str, Backend] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.method = method
        self.backends = {method: backend, **(extra or {})}
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
    def load(cls, config: Config | str | Path | None = None, progress: Callable[[str], Progress] | None = None) -> "Detector":
        """Build the models and backends a config (object, name or path) names; the config's `weights` are
        registry names or files (downloaded if needed, with `progress` per file).

        `backend` runs the models: torch (eager) or compile build them from the checkpoints; onnxruntime or
        tensorrt run the files exported into `engines` (`student_precision` int8 picks the quantized student)
        and only check them against the checkpoints, never loading these. `method` is distildire, dire (the ADM
        and the `dire` classifier checkpoint, on torch or compile), or both (DistilDIRE primary, DIRE beside it;
        one ADM serves both).
        """
        if not isinstance(config, Config):
            config = load_config(config)
        method, backend = config.method, config.backend
        if method not in CHOICES:
            raise ConfigError(f"{method}: unknown method (choose {', '.join(CHOICES)})")
        spec = backend_spec(backend)
        if method != "distildire" and "dire" not in spec.methods:
            able = " or ".join(s.name for s in REGISTRY.values() if "dire" in s.methods)
            raise BackendError(f"the dire method runs on --backend {able}, not {backend} (DIRE is not exported)")
        where = pick_device(config.device)
        chunks = AdaptiveBatch(config.batch)
        specs = (config.weights.adm, config.weights.student)
        needed = {"ADM": config.weights.adm} if spec.eager or method != "distildire" else {}
        if spec.eager and method != "dire":
            needed["student"] = config.weights.student
        if method != "distildire":
            needed["DIRE classifier"] = config.weights.dire
        files = resolve_all(needed, progress)  # every missing checkpoint in one message, before any model is built
        loaded: dict[str, nn.Module] = {}

        def unet() -> nn.Module:
            if "unet" not in loaded:
                loaded["unet"] = load_adm(config.adm, files["ADM"])
            return loaded["unet"]

        def models() -> tuple[nn.Module, nn.Module]:
            return FirstStepNoise(unet(), config.adm), load_student(files["student"])

        backends: dict[str, Backend] = {}
        if method in ("distildire", "both"):
            backends["distildire"] = make_backend(backend, config, where, chunks, models, specs, Path(config.engines), config.student_precision)
        if method in ("dire", "both"):
            precisions(backend, config, where, config.student_precision)  # refuses what eager PyTorch cannot run (int8, fp8); DIRE runs fp32
            classifier = load_dire_classifier(files["DIRE classifier"])
            reconstruction = DIRE(unet(), config.adm, config.train.dire_steps)
            backends["dire"] = DIREBackend(reconstruction, classifier, where, config.channels_last, compile=backend == "compile")
        primary = "distildire" if method == "both" else method
        extra = {m: b for m, b in backends.items() if m != primary}
        return cls(backends[primary], config, chunks, primary, extra)

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods this detector scores, the primary one first."""
        return tuple(self.backends)

    def describe(self) -> dict[str, Any]:
        """How this detector runs, as outputs record it: device, precisions, backend, methods, warm-up."""
        return {
            "device": str(self.device), "precision": self.precision, "backend": self.backend.name, "method": self.method,
            "methods": list(self.methods), "student_precision": self.backend.student_precision, "warmup_s": self.backend.warmup_s,
        }

    def preprocess(self, frames: np.ndarray | Sequence[np.ndarray], rules: Sequence[str] | None = None) -> Inputs:
        """uint8 RGB frames (N×H×W×3, or a list of H×W×3 of any sizes) → N×3×S×S in [-1, 1] on the device, by each
        method's own rule (`rules`, default: this detector's methods): one tensor, or method → tensor for several."""
        return one_or_each(preprocess_each(frames, self.image_size, rules or self.backends, self.device, self.uploader))

    def preprocess_crops(
        self, frames: Sequence[np.ndarray | YuvImage | torch.Tensor], mode: str, layout: Sequence[tuple[str, list[Box]]] | None = None, rules: Sequence[str] | None = None
    ) -> tuple[Inputs, list[tuple[str, list[Box]]]]:
        """The crops of each frame in `mode` (cover, faces; see `streamdet.crops`) as one batch, and each frame's (kind, boxes).

        `layout` gives each frame's (kind, boxes) where they were found already (a scan finds them in its decode threads).
        """
        layout = [crop_boxes(frame, mode, self.faces) for frame in frames] if layout is None else list(layout)
        each = preprocess_each(frames, self.image_size, rules or self.backends, self.device, self.uploader, [boxes for _, boxes in layout])
        return one_or_each(each), layout

    @torch.inference_mode()
    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.noise(x)

    def noise(self, x: Inputs) -> torch.Tensor:
        """The primary method's evidence for preprocessed frames, float32 on the device, same shape as `x`:
        first-step eps (DistilDIRE) or the quantized DIRE image, 0..255 (DIRE)."""
        return self.batch.run(self._noise, for_rule(x, self.method))

    def logits(self, x: Inputs, method: str | None = None) -> torch.Tensor:
        """Logits (N,) of `method` (default: the primary one) for preprocessed frames (its own rule's, where `x` holds several)."""
        method = method or self.method
        backend = self.backends[method]

        @torch.inference_mode()
        def run(chunk: torch.Tensor) -> torch.Tensor:
            return backend.logits(chunk, backend.noise(chunk))

        return self.batch.run(run, for_rule(x, method))

    def score(self, x: Inputs) -> torch.Tensor:
        """P(fake) per preprocessed frame by the primary method, (N,) float32 on the CPU."""
        return torch.sigmoid(self.logits(x)).cpu()

    def score_async(self, x: Inputs) -> PendingScores:
        """P(fake) per preprocessed frame, queued on the device: the host reads them with `.result()` when it needs them."""
        primary = torch.sigmoid(self.logits(x))
        if len(self.backends) == 1:
            return PendingScores(primary)
        return PendingScores(primary, methods={m: primary if m == self.method else torch.sigmoid(self.logits(x, m)) for m in self.backends})

    def scores(self, x: Inputs) -> dict[str, torch.Tensor]:
        """P(fake) per preprocessed frame by every method of this detector, the primary one first."""
        return {method: torch.sigmoid(self.logits(x, method)).cpu() for method in self.backends}
