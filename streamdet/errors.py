"""Errors that streamdet reports to users as one line naming the input and the problem."""

from __future__ import annotations


class StreamdetError(Exception):
    """Base class: its message is a complete one-line explanation for the user."""


class ConfigError(StreamdetError):
    """A configuration file or option is invalid."""


class WeightsError(StreamdetError):
    """A checkpoint is missing, cannot be downloaded, or does not fit the model."""


class MediaError(StreamdetError):
    """An input file or stream cannot be read as video or image."""


class DatasetError(StreamdetError):
    """A training or evaluation dataset (its folders, manifest or caches) cannot be used."""


class ExportError(StreamdetError):
    """A model cannot be exported with the options given."""


class BackendError(StreamdetError):
    """A backend cannot run here: a missing package or GPU, a missing or mismatched exported file."""


class OutputError(StreamdetError):
    """An output file cannot be written where it was asked for."""
