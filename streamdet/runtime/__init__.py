"""What runs the noise model and the student: the Backend interface, adaptive batching, one module per backend.

The exporter (`streamdet.export`) writes files; the backends here read them. Nothing here knows the detector.
"""

from .base import BACKENDS, Backend
from .batching import AdaptiveBatch
from .factory import make_backend

__all__ = ["BACKENDS", "AdaptiveBatch", "Backend", "make_backend"]
