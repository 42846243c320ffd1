"""streamdet: find diffusion- and GAN-synthesized frames in videos and live streams (DistilDIRE)."""

from __future__ import annotations

import os
from typing import Any, Sequence

from .version import __version__

__all__ = ["Config", "Detector", "Engine", "FileResult", "FrameScore", "__version__", "load_config", "scan"]


def scan(paths: Sequence[str | os.PathLike], config: Any = None, **settings: Any) -> list[Any]:
    """Scan videos, images and folders in one call: the settings of `config` (a Config, a built-in name or a YAML
    file) with `settings` over them (dotted keys as keywords: ``threshold=0.6``, ``crops="cover"``; use
    ``load_config`` for nested ones). For many scans build one `Engine` and call its `scan`."""
    from .config import Config, load_config, with_overrides
    from .engine import Engine

    base = config if isinstance(config, Config) else load_config(config)
    return Engine.load(with_overrides(base, settings)).scan(paths)


def __getattr__(name: str) -> Any:
    """Import the heavy parts (torch, guided-diffusion) only when they are used, so the CLI starts fast."""
    if name == "Detector":
        from .detector import Detector

        return Detector
    if name in ("Config", "load_config"):
        from . import config

        return getattr(config, name)
    if name in ("FileResult", "FrameScore"):
        from . import results

        return getattr(results, name)
    if name == "Engine":
        from .engine import Engine

        return Engine
    if name == "scan":
        return scan
    raise AttributeError(f"module 'streamdet' has no attribute {name!r}")
