"""`streamdet serve`: scans over HTTP for many clients, with their frames batched together on one engine."""

from .server import serve

__all__ = ["serve"]
