"""Compressed students: structured/unstructured pruning, SVD factorisation and LSQ quantization, each distilled from the original."""

from __future__ import annotations

from .job import METHODS, CompressResult, Settings, compress

__all__ = ["METHODS", "CompressResult", "Settings", "compress"]
