"""Turn the paths a user names (files, folders, stream URLs) into an ordered list of media inputs."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streamdet.video.animation import is_animated

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
    """``image`` for image extensions (animated GIF and WebP aside), else ``video``: unknown extensions are left
    for the decoder to judge."""
    if is_url(path) or is_animated(path):
        return "video"
    return "image" if Path(path).suffix.lower() in IMAGE_EXTS else "video"


def expand_inputs(paths: Sequence[str | Path]) -> list[Input]:
    """Expand files, folders (recursively, sorted, media only, hidden skipped) and URLs; drop duplicates."""
    inputs: list[Input] = []
    seen: set[str] = set()
    for raw in paths:
        for item in _expand_one(str(raw)):
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
    return [Input(path, media_kind(path))]


def _walk_folder(folder: str) -> list[Input]:
    """Media files under ``folder`` in sorted path order, or one error input if there are none."""
    root = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTS:
                found.append(Path(dirpath, name).relative_to(root).parts)
    if not found:
        return [Input(folder, "error", f"{folder}: no image or video files found")]
    return [Input(str(root.joinpath(*parts)), media_kind(root.joinpath(*parts))) for parts in sorted(found)]


def _identity(path: str) -> str:
    """A key equal for two spellings of the same file, so that duplicates can be dropped."""
    return path if is_url(path) else os.path.realpath(path)
