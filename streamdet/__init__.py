"""streamdet: find diffusion- and GAN-synthesized frames in videos and live streams (DistilDIRE)."""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["Config", "Detector", "FileResult", "load_config", "scan"]


def __getattr__(name: str) -> Any:
    """Import the heavy parts (torch, guided-diffusion) only when they are used, so the CLI starts fast."""
    if name == "Detector":
        from .detector import Detector

        return Detector
    if name in ("Config", "load_config"):
        from . import config

        return getattr(config, name)
    if name in ("FileResult", "scan"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'streamdet' has no attribute {name!r}")
