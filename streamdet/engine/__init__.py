"""The one scan engine: settings → frames → scores → verdict, shared by every entry point."""

from .core import Engine
from .scoring import InFlight, Scorer, score_frames, send

__all__ = ["Engine", "InFlight", "Scorer", "score_frames", "send"]
