"""Atomic file writes (temporary file in the same folder + os.replace), so a reader never sees half a file; and
the type of a path argument of the public API (`StrPath`).

Where the output goes:
- a regular file (new or existing): written atomically; a symlink is followed and its target written atomically
  (the link stays a link);
- a character device, FIFO or socket, or a link under /dev or /proc (`/dev/stdout`, `/dev/null`, `/dev/fd/N`,
  whatever the shell connected them to): written in place, never replaced, since renaming onto it would destroy
  the device node or the link (a regular file there is truncated and written, as `>` would);
- a folder, or a place that cannot be written: an `OutputError`, one line naming the path.

Temporary files are named `.<name>.<pid>.<random>.tmp`; a durable (`fsync`) write first removes those of the same
name that a killed process left (its pid gone, untouched for `STALE_S`).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

# What a public function takes for a file or folder: a str or any os.PathLike (pathlib.Path among them), made a Path on entry.
StrPath = Union[str, "os.PathLike[str]"]

from .errors import OutputError

STALE_S = 600.0  # a temporary file of a dead process, unmodified this long, is left over from a kill
_IN_PLACE_ROOTS = ("/dev/", "/proc/")


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


def written_in_place(path: Path) -> bool:
    """True for outputs that are streams, not files: existing character devices, FIFOs and sockets, and links
    under /dev or /proc (`/dev/stdout` and its kind)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return True
    return os.path.islink(path) and str(Path(path).absolute()).startswith(_IN_PLACE_ROOTS)


def _target(path: Path) -> Path:
    """The file an atomic write replaces: `path`, or the file its symlinks lead to; a folder, or a file where a
    folder on the way should be, is an `OutputError`."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name to write")
    folder = _existing_folder(target)
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot write ({folder} is not a folder)")
    return target


def _existing_folder(target: Path) -> Path:
    """The nearest folder of `target` that exists (the ones below it are still to be made)."""
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _problem(exc: OSError) -> str:
    return str(exc.strerror or exc).lower()


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete the temporary files of `target` (`.<name>.<pid>.<random>.tmp`) that killed processes left; return them.

    One is stale when its process is gone and it was not modified for `STALE_S` (a slow writer on another machine
    sharing the folder keeps its file fresh).
    """
    removed = []
    prefix = f".{target.name}."
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        middle = entry.name[len(prefix) : -len(".tmp")].split(".")
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp") and len(middle) == 2 and middle[0].isdigit()):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and not _alive(int(middle[0])) and now - entry.stat().st_mtime > STALE_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


@contextmanager
def atomic_path(path: Path, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto `path` (mode 0644) when the block succeeds, removed when it fails.

    With `fsync` the file is flushed to disk before the rename and the folder after it, so that after a crash
    `path` holds either the old or the whole new file; stale temporaries of `path` are removed first. A stream
    (see `written_in_place`) is yielded itself, to be written in place. Errors writing it are an `OutputError`.
    """
    path = Path(path)
    if written_in_place(path):
        with _as_output_error(path, (str(path),)):
            yield path
        return
    target = _target(path)
    with _as_output_error(path, ()):
        target.parent.mkdir(parents=True, exist_ok=True)
        if fsync:
            remove_stale_temps(target)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
        os.close(fd)
    try:
        with _as_output_error(path, (tmp, str(target))):
            yield Path(tmp)
            move_into_place(Path(tmp), target, fsync)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def _as_output_error(path: Path, names: tuple[str, ...]) -> Iterator[None]:
    """Report an OSError about the output (no file named, or one of `names`) as an `OutputError` naming `path`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and names and str(exc.filename) not in names:
            raise
        raise OutputError(f"{path}: cannot write ({_problem(exc)})") from None


def write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write `data` to `path` atomically; with `fsync`, durable once this returns (see `atomic_path`)."""
    with atomic_path(path, fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, fsync: bool = False) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"), fsync)


def check_writable(path: str | os.PathLike) -> None:
    """Raise an `OutputError` (the one line a failed write of `path` would give) unless a write of `path` can
    succeed: call it before the work whose result goes there. A stream (/dev/stdout, a FIFO) must be writable; a
    file must not be a folder or read-only and needs a folder (the nearest existing one, where folders are still
    to be made) that takes a new file, probed by creating and removing a temporary file."""
    path = Path(path)
    if written_in_place(path):
        if not os.access(path, os.W_OK):
            raise OutputError(f"{path}: cannot write (permission denied)")
        return
    target = _target(path)  # refuses a folder, and a file where a folder should be
    folder = _existing_folder(target)
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_problem(exc)})") from None
    if target.is_file() and not os.access(target, os.W_OK):
        raise OutputError(f"{path}: cannot write (the file is read-only)")
