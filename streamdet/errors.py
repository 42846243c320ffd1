"""Errors that streamdet reports to users as one line naming the input and the problem."""

from __future__ import annotations

import logging


def shown(text: str) -> str:
    """`text` with every character that is not printable (newlines, tabs, ESC and other controls, bidi overrides,
    undecodable bytes) written as its Python escape (\\n, \\x1b, \\u202e, \\udcff), so that a name found on disk
    stays on one line and cannot drive the terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class OneLineFormatter(logging.Formatter):
    """Log lines for people: the message part with control characters escaped (`errors.shown`), so a file name
    cannot break a line or reach the terminal as escape codes (a traceback under --verbose keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's naming)
        return shown(super().formatMessage(record))


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


class OutputError(StreamdetError, OSError):
    """An output file cannot be written where it was asked for (a folder, a read-only place, a full disk).

    It is an OSError too, so that code which caught the OSError of a failed write still does."""
