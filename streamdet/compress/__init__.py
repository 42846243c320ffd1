"""Compressed students: structured/unstructured pruning, SVD factorisation and LSQ quantization, each distilled from the original;
LSQ quantization of the lite detector too."""

from __future__ import annotations

from .job import METHODS, CompressResult, Settings, compress
from .lite import is_lite_checkpoint, quantize_lite

__all__ = ["METHODS", "CompressResult", "Settings", "compress", "is_lite_checkpoint", "quantize_lite"]
