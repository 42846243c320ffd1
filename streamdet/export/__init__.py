"""Export the noise model and the student to ONNX / TensorRT, and run them (or torch.compile) as backends."""

from __future__ import annotations

from .runtime import BACKENDS, Backend, make_backend

__all__ = ["BACKENDS", "Backend", "make_backend"]
