"""What an upload is, read from its headers before any frame is decoded: image or video, size, duration, frames.

Image or video is decided as `scan` decides it, by the content (`streamdet.video.media_kind`), never by the
client's file name; an image's size comes from its header (`streamdet.video.headers`, no pixels decoded), a
video's from its container. The operator's limits (the `max_pixels` setting, `serve.max_duration`,
`serve.max_frames`) are checked on these header values, so a decompression bomb or an hour-long upload is
refused before it costs memory or decode time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from ..config import Sampling
from ..video.headers import image_header
from ..video.sampling import expected_frames as frames_expected
from ..video.sniff import invalid_data_problem
from ..video.sources import media_kind


class NotMedia(Exception):
    """The content is neither an image nor a video container: the message is the decoder's one-line reason."""


class OverLimit(Exception):
    """The media is readable but beyond an operator limit: the message says which and by how much."""


@dataclass(frozen=True)
class Facts:
    """An input as its headers describe it: kind, frame size (None: too large for Pillow to say), duration (s), frame count and rate."""

    kind: str
    width: int | None
    height: int | None
    duration: float | None = None
    frames: int | None = None
    fps: float | None = None


def inspect(path: Path) -> Facts:
    """The facts of the file at `path` from its headers; `NotMedia` with the reason where it is no media."""
    if media_kind(path) == "video":
        return _video_facts(path)
    header = image_header(str(path))
    if header is None:
        raise NotMedia("begins as an image does, but its header cannot be read (a damaged image)")
    return Facts("image", header.width, header.height, 0.0, 1, None)


def _video_facts(path: Path) -> Facts:
    """The first video stream's size, duration, frame count and rate, from the container's headers."""
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise NotMedia(invalid_data_problem(str(path))) from None
    except av.FFmpegError as exc:
        raise NotMedia(f"cannot open ({exc.strerror or exc})") from None
    with container:
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise NotMedia("no video stream" + (" (audio only)" if container.streams.audio else ""))
        stream = streams[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise NotMedia("video stream without a frame size (damaged header)")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        fps = float(stream.average_rate) if stream.average_rate else None
        return Facts("video", width, height, duration, stream.frames or None, fps)


def check_limits(facts: Facts, sampling: Sampling, max_pixels: int, max_duration: float, max_frames: int) -> int | None:
    """Refuse (`OverLimit`) media beyond the operator's limits; return the frames `sampling` will take where known."""
    if facts.width is None or facts.height is None:
        raise OverLimit(f"an image too large for its size to be read (Pillow refuses to open it); this server accepts at most {max_pixels:,} pixels")
    pixels = facts.width * facts.height
    if pixels > max_pixels:
        raise OverLimit(f"{facts.width}×{facts.height} frames have {pixels:,} pixels; this server accepts at most {max_pixels:,}")
    if facts.kind == "image":
        return 1
    if facts.duration is None:
        raise OverLimit(f"the container does not say how long the video is; this server needs it to hold videos to {max_duration:g} s")
    if facts.duration > max_duration:
        raise OverLimit(f"video of {facts.duration:.1f} s; this server accepts at most {max_duration:g} s")
    expected = expected_frames(facts, sampling)
    if expected is not None and expected > max_frames:
        raise OverLimit(f"sampling {sampling.mode} takes about {expected} frames of this video; this server scores at most {max_frames} per job")
    return expected


def expected_frames(facts: Facts, sampling: Sampling) -> int | None:
    """About how many frames `sampling` takes from the video (None for key frames, which only decoding counts)."""
    total = facts.frames or (round(facts.duration * facts.fps) if facts.duration and facts.fps else None)
    return frames_expected(sampling, total, facts.duration)
