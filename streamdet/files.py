"""Atomic file writes (temporary file in the same folder + os.replace), so a reader never sees half a file; and the
type of a path argument of the public API."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

# What a public function takes for a file or folder: a str or any os.PathLike (pathlib.Path among them), made a Path on entry.
StrPath = Union[str, "os.PathLike[str]"]


def fsync_file(path: Path) -> None:
    """Flush the contents of the file at `path` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so that a rename into it survives a crash (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into_place(src: Path, dst: Path, fsync: bool = False) -> None:
    """Rename a finished file `src` onto `dst` (same file system; mode 0644); with `fsync`, flushed before and the folder after."""
    os.chmod(src, 0o644)
    if fsync:
        fsync_file(src)
    os.replace(src, dst)
    if fsync:
        fsync_folder(dst.parent)


@contextmanager
def atomic_path(path: Path, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto `path` (mode 0644) when the block succeeds, removed when it fails.

    With `fsync` the file is flushed to disk before the rename and the folder after it, so that after a crash
    `path` holds either the old or the whole new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        move_into_place(Path(tmp), path, fsync)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write `data` to `path` atomically; with `fsync`, durable once this returns (see `atomic_path`)."""
    with atomic_path(path, fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, fsync: bool = False) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"), fsync)
