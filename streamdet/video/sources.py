"""Turn the paths a user names (files, folders, stream URLs) into an ordered list of media inputs."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streamdet.video.animation import is_animated
from streamdet.video.headers import is_image

VIDEO_EXTS = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".m2ts", ".mts",
        ".flv", ".wmv", ".asf", ".3gp", ".3g2", ".ogv", ".vob", ".mxf", ".y4m", ".h264", ".h265", ".hevc",
    }
)
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MEDIA_EXTS = VIDEO_EXTS | IMAGE_EXTS

Kind = Literal["video", "image", "error"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class Input:
    """One thing to analyse: a video or image path (or stream URL), or a path that could not be used and why."""

    path: str
    kind: Kind
    error: str | None = None


def is_url(path: str | Path) -> bool:
    """True for stream addresses such as ``rtsp://...`` or ``https://...``, which are not checked on disk."""
    return bool(_URL.match(str(path)))


def media_kind(path: str | Path) -> Literal["video", "image"]:
    """``image`` where the file begins as an image format does (animated GIF and WebP aside), else ``video`` (left
    to FFmpeg, which also says what a file that is neither is). The content decides, never the name: a video
    renamed ``.jpg`` is a video."""
    if is_url(path) or is_animated(path):
        return "video"
    return "image" if is_image(str(path)) else "video"


def special_file(path: str, info: os.stat_result) -> str | None:
    """Why a path that is neither a regular file nor a folder is not read (named pipes and sockets would block or
    mean nothing); None for regular files, folders and devices (a capture device the user names is a stream)."""
    if stat.S_ISFIFO(info.st_mode):
        return f"{path}: is a named pipe (FIFO), not a media file; not read"
    if stat.S_ISSOCK(info.st_mode):
        return f"{path}: is a socket, not a media file; not read"
    return None


def expand_inputs(paths: Sequence[str | os.PathLike]) -> list[Input]:
    """Expand files, folders (recursively, sorted, media only, hidden skipped) and URLs (`str` or any
    `os.PathLike`); drop duplicates."""
    inputs: list[Input] = []
    seen: set[str] = set()
    for raw in paths:
        for item in _expand_one(os.fspath(raw)):
            key = item.error if item.kind == "error" else _identity(item.path)
            if key not in seen:
                seen.add(key)
                inputs.append(item)
    return inputs


def _expand_one(path: str) -> list[Input]:
    """The inputs one user-given path stands for."""
    if is_url(path):
        return [Input(path, "video")]
    if os.path.isdir(path):
        return _walk_folder(path)
    if not os.path.lexists(path):
        return [Input(path, "error", f"{path}: no such file or directory")]
    try:
        problem = special_file(path, os.stat(path))
    except OSError:
        problem = None  # a broken link or an unreadable path: the decoder says what is wrong
    if problem is not None:
        return [Input(path, "error", problem)]
    return [Input(path, media_kind(path))]


def _walk_folder(folder: str) -> list[Input]:
    """Media files under ``folder`` in sorted path order, or one error input if there are none.

    Files are picked by their extension; only regular files are read (a named pipe or socket among them is an
    error input, a device is skipped: only a device named by itself is read).
    """
    root = Path(folder)
    found: list[tuple[tuple[str, ...], str | None]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTS:
                path = os.path.join(dirpath, name)
                try:
                    info = os.stat(path)
                except OSError:
                    info = None  # a broken link: kept, so that the decoder reports it
                if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
                    continue
                found.append((Path(path).relative_to(root).parts, special_file(path, info) if info else None))
    if not found:
        return [Input(folder, "error", f"{folder}: no image or video files found")]
    inputs = []
    for parts, problem in sorted(found):
        path = str(root.joinpath(*parts))
        inputs.append(Input(path, "error", problem) if problem else Input(path, media_kind(path)))
    return inputs


def _identity(path: str) -> str:
    """A key equal for two spellings of the same file, so that duplicates can be dropped."""
    return path if is_url(path) else os.path.realpath(path)
