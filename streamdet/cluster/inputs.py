"""The inputs of a cluster scan: paths, globs, folders and list files, each with the key that makes a re-run skip it."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import StreamdetError
from ..video import Input, expand_inputs
from ..video.sources import is_url


@dataclass(frozen=True)
class Pending:
    """One input to scan, with its size and modification time (None for URLs and missing files)."""

    path: str
    kind: str
    error: str | None = None
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def key(self) -> tuple[str, int | None, int | None]:
        """What identifies this input's result in the output: a changed file is scanned again."""
        return (self.path, self.size, self.mtime_ns)


def read_list(path: str | Path) -> list[str]:
    """The paths or URLs of a list file, one per line (blank lines and lines starting with # ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StreamdetError(f"{path}: cannot read the list file ({exc.strerror if isinstance(exc, OSError) else exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _globbed(source: str) -> list[str]:
    """A glob pattern's matches in sorted order (the pattern itself when it names a file or matches nothing)."""
    if is_url(source) or os.path.lexists(source) or not glob.has_magic(source):
        return [source]
    return sorted(glob.glob(source, recursive=True)) or [source]


def gather_sources(sources: Sequence[str], lists: Iterable[str | Path] = ()) -> list[str]:
    """The sources given on the command line and in list files, globs expanded."""
    raw = list(sources)
    for path in lists:
        raw.extend(read_list(path))
    return [match for source in raw for match in _globbed(source)]


def _stat(item: Input) -> Pending:
    if item.kind == "error" or is_url(item.path):
        return Pending(item.path, item.kind, item.error)
    try:
        st = os.stat(item.path)
    except OSError as exc:
        return Pending(item.path, "error", f"{item.path}: cannot read ({exc.strerror})")
    return Pending(item.path, item.kind, None, st.st_size, st.st_mtime_ns)


def pending_inputs(sources: Sequence[str]) -> list[Pending]:
    """Expand sources as the local scan does (folders recursively, duplicates dropped) and stat each file."""
    return [_stat(item) for item in expand_inputs(sources)]
