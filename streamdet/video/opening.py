"""Open a media file with PyAV and find its video stream, each failure as a one-line ``MediaError``."""

from __future__ import annotations

import os
import stat

import av

from streamdet.errors import MediaError
from streamdet.video.sniff import invalid_data_problem
from streamdet.video.sources import is_url, special_file


def open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` with PyAV after checking it is a readable, non-empty file."""
    if not is_url(path):
        check_file(path)
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(f"{path}: {invalid_data_problem(path)}") from None
    except OSError as exc:
        raise MediaError(f"{path}: {os_problem(exc)}") from None
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot open ({exc.strerror or exc})") from None


def video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art pictures in audio files do not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    audio_only = bool(container.streams.audio)
    kind = None if container.streams else container.format.long_name or container.format.name
    container.close()
    if kind is not None:  # e.g. an MP4 whose index (moov) is zeroed: the container is there, its list of streams is not
        raise MediaError(f"{path}: damaged {kind} file: its header describes no streams")
    raise MediaError(f"{path}: no video stream" + (" (audio only)" if audio_only else ""))


def check_file(path: str) -> None:
    """Fail with a clear message if ``path`` is missing, a directory, empty or unreadable."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if problem := special_file(path, info):
            raise MediaError(problem)
        if stat.S_ISREG(info.st_mode):
            if info.st_size == 0:
                raise MediaError(f"{path}: empty file (0 bytes)")
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise MediaError(f"{path}: {os_problem(exc)}") from None


def os_problem(exc: OSError) -> str:
    """A short description of a file-system error."""
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a media file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot open ({exc.strerror or exc})"
