"""Errors of export and of the accelerated backends, each a one-line message for the user."""

from __future__ import annotations

from ..errors import StreamdetError


class ExportError(StreamdetError):
    """A model cannot be exported with the options given."""


class BackendError(StreamdetError):
    """A backend cannot run here: a missing package or GPU, a missing or mismatched engine file."""
