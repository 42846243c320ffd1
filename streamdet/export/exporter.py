"""`streamdet export`: load the checkpoints, export the noise model and/or the student, write files and metadata."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..config import Config, with_overrides
from ..detector import Detector
from ..device import QUANTIZED, pick_device, require_fp8
from ..errors import ExportError
from ..files import write_bytes
from ..models.noise import load_noise_model
from ..models.student import load_student
from ..runtime.artifacts import DEFAULT_ENGINES, EXTENSIONS, MODELS, Identity, artifact_path, check_precision, config_fingerprint
from ..runtime.trt import gpu_name, require_cuda, require_tensorrt
from ..weights import Progress, file_sha256, resolve
from .graphs import ExportGraph, noise_graph, student_graph
from .metadata import BatchRange, describe, write_metadata
from .onnx_export import publish, staging, write_onnx
from .quantize import INT8_LAYOUTS, calibration_inputs, quantize_graph
from .tensorrt_build import build_engine

log = logging.getLogger("streamdet")


def default_models(precision: str) -> tuple[str, ...]:
    """Both models, except at int8 (the student unless the noise model is asked for) and fp8 (the noise model only)."""
    return {"int8": ("student",), "fp8": ("noise",)}.get(precision, MODELS)


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


class _Exporter:
    """Loads each checkpoint once and writes the requested artifacts."""

    def __init__(self, config: Config, checkpoints: dict[str, str | Path | None], fmt: str, batch: BatchRange, out: Path, device: torch.device | None, progress: Callable[[str], Progress] | None) -> None:
        self.config, self.fmt, self.batch, self.out, self.progress = config, fmt, batch, out, progress
        self.specs = {"noise": checkpoints["noise"] or config.weights.adm, "student": checkpoints["student"] or config.weights.student}
        self._paths: dict[str, Path] = {}
        self.size = config.adm.image_size
        self.device = device
        self._modules: dict[str, torch.nn.Module] = {}
        self.tensorrt_version = require_tensorrt().__version__ if fmt == "tensorrt" else None
        self.gpu = gpu_name(device) if fmt == "tensorrt" else None

    def checkpoint(self, model: str) -> Path:
        """The checkpoint file of `model`, resolved (and downloaded) only when that model is needed."""
        if model not in self._paths:
            label = "ADM" if model == "noise" else "student"
            self._paths[model] = resolve(self.specs[model], self.progress(label) if self.progress else None)
        return self._paths[model]

    def module(self, model: str) -> torch.nn.Module:
        if model not in self._modules:
            if model == "noise":
                self._modules[model] = load_noise_model(self.config.adm, self.checkpoint(model))
            else:
                self._modules[model] = load_student(self.checkpoint(model))
        return self._modules[model]

    def identity(self, model: str, precision: str) -> Identity:
        checkpoint = self.checkpoint(model)
        return Identity(
            model=model,
            format=self.fmt,
            precision=precision,
            checkpoint=str(checkpoint),
            checkpoint_sha256=file_sha256(checkpoint),
            config=config_fingerprint(self.config),
            tensorrt_version=self.tensorrt_version,
            gpu=self.gpu,
        )

    def calibration(self, model: str, folder: Path, frames: int) -> list[dict]:
        """Calibration inputs of `model`: frames (the noise model), or frames and their fp32 eps (the student)."""
        config = with_overrides(self.config, device=str(self.device) if self.device is not None else None, precision="fp32" if self.config.precision in QUANTIZED else None)
        detector = Detector.from_models(self.module("noise"), self.module("student"), config)
        return calibration_inputs(detector, folder, frames, config.batch, eps=model == "student")

    def graph(self, model: str, precision: str) -> ExportGraph:
        if model == "noise":
            return noise_graph(self.module("noise"), precision)
        return student_graph(self.module("student"), precision)

    def export(self, model: str, precision: str, calibrate: Path | None, frames: int) -> Path:
        started = time.perf_counter()
        path = artifact_path(self.out, model, precision, self.fmt)
        identity = self.identity(model, precision)
        graph = self.graph(model, precision)
        extra: dict = {"exporter": {"torch": torch.__version__}}
        with staging(self.out) as tmp:
            onnx_path = tmp / f"{model}-{precision}.onnx"
            write_onnx(graph, onnx_path, self.batch, self.size)
            if precision in QUANTIZED:
                batches = self.calibration(model, calibrate, frames)
                quantized = tmp / f"{model}-{precision}-qdq.onnx"
                layout = "u8s8-qoperator" if model == "noise" and self.fmt == "onnx" else "s8s8-qdq"  # ONNX Runtime's fastest for the ADM (measured)
                quantize_graph(onnx_path, quantized, batches, precision, layout)
                onnx_path = quantized
                method = INT8_LAYOUTS[layout] if precision == "int8" else "distribution, fp8 E4M3"
                extra["calibration"] = {"folder": str(calibrate), "frames": sum(len(b["x"]) for b in batches), "method": f"{method}, per-channel weights"}
            extra["exporter"]["onnx_opset"] = _opset(onnx_path)
            if self.fmt == "onnx":
                publish(onnx_path, path)
            else:
                with torch.cuda.device(self.device):
                    write_bytes(path, build_engine(onnx_path, graph.inputs, self.size, self.batch), fsync=True)
        inputs, outputs = graph.interface(self.size)
        write_metadata(path, describe(identity, path, inputs, outputs, self.batch, **extra))
        log.info("exported %s in %.1f s", path, time.perf_counter() - started)
        return path


def export_models(
    config: Config,
    fmt: str,
    precision: str,
    batch: BatchRange,
    out: str | Path = DEFAULT_ENGINES,
    adm: str | Path | None = None,
    student: str | Path | None = None,
    models: Sequence[str] | None = None,
    calibrate: str | Path | None = None,
    calibration_frames: int = 128,
    progress: Callable[[str], Progress] | None = None,
) -> list[Path]:
    """Export `models` (default: both; the student only at int8, the noise model only at fp8) as `fmt` at `precision` into `out`; the files written.

    `adm` / `student` are checkpoint files or registered names (default: the config's); only those
    needed are resolved (the ADM for the noise model, and for int8 calibration of the student).
    """
    if fmt not in EXTENSIONS:
        raise ExportError(f"{fmt}: unknown export format (choose {', '.join(EXTENSIONS)})")
    models = tuple(models) if models else default_models(precision)
    for model in models:
        if model not in MODELS:
            raise ExportError(f"{model}: unknown model (choose {', '.join(MODELS)})")
        check_precision(fmt, model, precision)
    if precision in QUANTIZED and calibrate is None:
        raise ExportError(f"{precision} needs calibration frames: pass --calibrate FOLDER (images or videos like those you will scan)")
    if calibrate is not None and not Path(calibrate).is_dir():
        raise ExportError(f"{calibrate}: not a folder of calibration frames")
    device = None
    if fmt == "tensorrt":
        require_tensorrt()
        device = require_cuda(pick_device(config.device) if torch.cuda.is_available() else torch.device("cpu"))
        if precision == "fp8":
            require_fp8(device)
    exporter = _Exporter(config, {"noise": adm, "student": student}, fmt, batch, Path(out), device, progress)
    return [exporter.export(model, precision, None if calibrate is None else Path(calibrate), calibration_frames) for model in models]
