"""What runs the noise model and the student: the Backend interface, adaptive batching, one module per backend.

The exporter (`streamdet.export`) writes files; the backends here read them. Nothing here knows the detector.
"""

from .base import BACKENDS, REGISTRY, Backend, BackendSpec
from .batching import AdaptiveBatch
from .factory import backend_spec, make_backend

__all__ = ["BACKENDS", "REGISTRY", "AdaptiveBatch", "Backend", "BackendSpec", "backend_spec", "make_backend"]
