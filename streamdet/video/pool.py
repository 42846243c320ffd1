"""A pool of open copies of one file, lent to its parallel chunk decoders."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from streamdet.video.videofile import VideoFile


class OpenFiles:
    """Open copies of one file for its parallel chunk decoders: a chunk borrows one and gives it back.

    Opening a file probes it, which decodes its first frame (about as costly as any key frame), so each
    worker thread opens the file once rather than each chunk.
    """

    def __init__(self, path: str, threads: int, first: VideoFile | None = None) -> None:
        """``first``, an open copy whose decoder has not started (the one the plan was read from), is lent too; it stays open."""
        self.path = path
        self.threads = threads
        self._idle: list[VideoFile] = []
        self._opened: list[VideoFile] = []
        self._lock = threading.Lock()
        if first is not None and not first.stream.codec_context.is_open:
            first.stream.codec_context.thread_count = threads
            self._idle.append(first)

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[VideoFile]:
        """An idle open copy of the file, back at its start (or one opened now if every copy is in use)."""
        with self._lock:
            video = self._idle.pop() if self._idle else None
        if video is None:
            video = VideoFile(self.path, self.threads)
            with self._lock:
                self._opened.append(video)
        else:
            video.rewound()
        try:
            yield video
        finally:
            with self._lock:
                self._idle.append(video)

    def __enter__(self) -> OpenFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for video in self._opened:
            video.__exit__(None, None, None)
