"""Read frames from video files, streams and images as RGB ``Frame``s, with every failure as a ``MediaError``.

Frame ``time`` is the presentation time in seconds from the stream start, taken from ``pts * time_base``
(never from index / fps, so variable-frame-rate video is timed correctly). Frame ``index`` is the frame's
position among all frames the decoder outputs (presentation order). Where not every frame is decoded
(``keyframes`` mode, and ``uniform`` mode on long videos, which seeks) the index is estimated as
``round(time * average_fps)``, exact for constant-frame-rate video.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from streamdet.errors import MediaError
from streamdet.video.frame import Frame
from streamdet.video.sampling import Sampling, pick_shown_at, select, uniform_times
from streamdet.video.sources import is_url, media_kind

log = logging.getLogger(__name__)

# Uniform sampling seeks only when a linear decode would read more than this many frames per requested
# frame: a seek decodes from the preceding key frame, up to a whole GOP (often 250 frames), so below
# this it saves nothing.
SEEK_MIN_FRAMES_PER_SAMPLE = 300

_HEAD_BYTES = 512

_Triple = tuple[int, float, av.VideoFrame]


@dataclass(frozen=True)
class VideoInfo:
    """What a video (or image) is: size after rotation, timing, codec. ``None`` where the file does not say.

    ``rotation`` is the display-matrix rotation in degrees counter-clockwise, as ffprobe and PyAV report it.
    """

    path: str
    width: int
    height: int
    duration: float | None
    frames: int | None
    fps: float | None
    rotation: int
    codec: str
    pix_fmt: str


def probe(path: str | Path) -> VideoInfo:
    """Describe a video or image, decoding its first frame to be sure it is readable."""
    path = str(path)
    if media_kind(path) == "image":
        image = read_image(path)
        return VideoInfo(path, image.shape[1], image.shape[0], 0.0, 1, None, 0, Path(path).suffix[1:].lower(), "rgb24")
    with _Video(path) as video:
        first = next(video.decode(), None)
        if first is None:
            raise video.nothing_decoded()
        matrix = display_matrix(first)
        width, height = (first.height, first.width) if _transposes(matrix) else (first.width, first.height)
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            duration=video.duration,
            frames=video.stream.frames or None,
            fps=video.fps,
            rotation=rotation_degrees(matrix),
            codec=video.stream.codec_context.name,
            pix_fmt=first.format.name,
        )


def iter_frames(path: str | Path, sampling: Sampling = Sampling()) -> Iterator[Frame]:
    """Yield the frames of a video or image that ``sampling`` selects, as upright RGB images.

    An image yields one frame (index 0, time 0). Errors surface as ``MediaError`` on first iteration.
    """
    path = str(path)
    if media_kind(path) == "image":
        yield Frame(source=path, index=0, time=0.0, image=read_image(path))
        return
    with _Video(path) as video:
        for index, time, frame in _selected(video, sampling):
            yield Frame(source=path, index=index, time=time, image=_converted(path, frame))
        if video.decoded == 0:
            raise video.nothing_decoded()


def _selected(video: _Video, sampling: Sampling) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """Choose the decoding strategy for ``sampling``: key frames only, seeking, or one linear pass."""
    if sampling.mode == "keyframes":
        video.stream.codec_context.skip_frame = "NONKEY"
        return video.estimated()
    if sampling.mode != "uniform":
        return select(sampling, video.indexed(), None, None)
    total = video.frame_count
    if total is not None and total <= sampling.frames:
        return video.indexed()
    duration = video.require_duration()
    if total is not None and total > sampling.frames * SEEK_MIN_FRAMES_PER_SAMPLE:
        return _seek_each(video, uniform_times(duration, sampling.frames))
    return select(sampling, video.indexed(), duration, total)


def _shown_at(triples: Iterator[_Triple], targets: Sequence[float]) -> Iterator[_Triple]:
    """The ``(index, time, frame)`` triples on screen at each target time."""
    return pick_shown_at(((triple[1], triple) for triple in triples), targets)


def _seek_each(video: _Video, targets: Sequence[float]) -> Iterator[_Triple]:
    """Seek to each target time and decode forward to the frame on screen then; decode linearly if seeking fails."""
    last_time = None
    for position, target in enumerate(targets):
        if not video.seek(target):
            log.warning("%s: seeking failed, decoding linearly instead", video.path)
            video.reopen()
            yield from _shown_at(video.indexed(), targets[position:])
            return
        for triple in _shown_at(video.estimated(), [target]):
            if triple[1] != last_time:
                last_time = triple[1]
                yield triple


class _Video:
    """An open video stream that decodes packet by packet, skipping corrupt ones, with errors as ``MediaError``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.decoded = 0
        self.corrupt = 0
        self._open()

    def _open(self) -> None:
        """Open the file and its video stream, with threaded decoding."""
        self.container = _open_container(self.path)
        self.stream = _video_stream(self.container, self.path)
        self.stream.thread_type = "AUTO"
        self.start = self.stream.start_time or 0

    def reopen(self) -> None:
        """Start again from the beginning of the file, for inputs that cannot seek back."""
        self.container.close()
        self._open()

    def __enter__(self) -> _Video:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.container.close()
        if self.corrupt:
            log.warning("%s: skipped %d corrupt or unreadable packet(s)", self.path, self.corrupt)

    @property
    def duration(self) -> float | None:
        """Seconds, from the stream header or else the container header."""
        if self.stream.duration is not None and self.stream.time_base is not None:
            return float(self.stream.duration * self.stream.time_base)
        if self.container.duration is not None:
            return self.container.duration / av.time_base
        return None

    @property
    def fps(self) -> float | None:
        """Average frames per second (frames / duration for variable frame rate)."""
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(rate) if rate else None

    @property
    def frame_count(self) -> int | None:
        """Frame count from the header, else estimated from duration and frame rate."""
        if self.stream.frames:
            return self.stream.frames
        if self.duration is not None and self.fps is not None:
            return max(1, round(self.duration * self.fps))
        return None

    def require_duration(self) -> float:
        """The duration, measured from packet timestamps when the header lacks it (not possible for live streams)."""
        duration = self.duration
        if duration is None and not is_url(self.path):
            duration = _scan_duration(self.path, self.stream.index, self.fps)
        if duration is None:
            raise MediaError(f"{self.path}: duration unknown, so uniform sampling is impossible; use fps or every")
        return duration

    def seek(self, time: float) -> bool:
        """Move to the key frame at or before ``time`` seconds; False if the input cannot seek."""
        offset = self.start + math.floor(time / self.stream.time_base)
        try:
            self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
        except (av.FFmpegError, OSError):
            return False
        return True

    def decode(self) -> Iterator[av.VideoFrame]:
        """Decode from the current position to the end, skipping packets the decoder rejects."""
        for packet in self._packets():
            try:
                frames = self.stream.decode(packet)
            except av.FFmpegError:
                self.corrupt += 1
                continue
            for frame in frames:
                self.decoded += 1
                yield frame

    def timed(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames with their presentation time in seconds from the stream start."""
        for index, frame in enumerate(self.decode()):
            yield self._time(frame, index), frame

    def indexed(self) -> Iterator[_Triple]:
        """``(index, time, frame)`` for every frame, index counting decoded frames from here."""
        for index, (time, frame) in enumerate(self.timed()):
            yield index, time, frame

    def estimated(self) -> Iterator[_Triple]:
        """``(index, time, frame)`` with the index estimated from time, for when frames were skipped."""
        for time, frame in self.timed():
            yield round(time * self.fps) if self.fps else 0, time, frame

    def nothing_decoded(self) -> MediaError:
        """The error for a video stream that yielded no frame at all."""
        if self.corrupt:
            return MediaError(f"{self.path}: no decodable video frames ({self.corrupt} corrupt packets)")
        return MediaError(f"{self.path}: video stream has no frames")

    def _time(self, frame: av.VideoFrame, index: int) -> float:
        """``(pts - start) * time_base``; without a pts, the index at the average rate."""
        if frame.pts is None:
            return index / self.fps if self.fps else 0.0
        return float((frame.pts - self.start) * self.stream.time_base)

    def _packets(self) -> Iterator[av.Packet]:
        """Demuxed packets of the stream; a read error ends the input like a truncated file would."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                self.corrupt += 1
                return
            yield packet



def _open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` with PyAV after checking it is a readable, non-empty file."""
    if not is_url(path):
        _check_file(path)
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(f"{path}: {_invalid_data_problem(path)}") from None
    except OSError as exc:
        raise MediaError(f"{path}: {_os_problem(exc)}") from None
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot open ({exc.strerror or exc})") from None


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art pictures in audio files do not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    audio_only = bool(container.streams.audio)
    container.close()
    raise MediaError(f"{path}: no video stream" + (" (audio only)" if audio_only else ""))


def _scan_duration(path: str, stream_index: int, fps: float | None) -> float | None:
    """Seconds spanned by a stream's packets, read without decoding, for files whose header has no duration.

    Packets without timestamps (raw elementary streams) count as one frame each at ``fps``.
    """
    start = end = None
    count = 0
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams[stream_index]
            time_base = stream.time_base
            for packet in container.demux(stream):
                count += packet.size > 0
                if packet.pts is not None:
                    start = packet.pts if start is None else min(start, packet.pts)
                    end = max(end or packet.pts, packet.pts + (packet.duration or 0))
    except (av.FFmpegError, OSError):
        return None
    if start is not None and end > start:
        return float((end - start) * time_base)
    return count / fps if count and fps else None


def _check_file(path: str) -> None:
    """Fail with a clear message if ``path`` is missing, a directory, empty or unreadable."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if stat.S_ISREG(info.st_mode):
            if info.st_size == 0:
                raise MediaError(f"{path}: empty file (0 bytes)")
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise MediaError(f"{path}: {_os_problem(exc)}") from None


def _os_problem(exc: OSError) -> str:
    """A short description of a file-system error."""
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a media file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot open ({exc.strerror or exc})"


def _invalid_data_problem(path: str) -> str:
    """Why FFmpeg found no media: a known container header means a damaged file, anything else not media."""
    try:
        with open(path, "rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError:
        head = b""
    name = container_name(head)
    if name:
        return f"truncated or corrupt {name} file (invalid data)"
    return "not a media file (invalid data)"


def container_name(head: bytes) -> str | None:
    """Name the container format whose signature starts ``head``, or None if none is recognised."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"FLV"):
        return "FLV"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "ASF/WMV"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "MPEG-PS"
    if head.startswith(b"OggS"):
        return "Ogg"
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "MPEG-TS"
    return None


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's display matrix (FFmpeg's 3×3 fixed-point layout), or None if it has none."""
    data = frame.side_data.get("DISPLAYMATRIX")
    return tuple(int(v) for v in np.frombuffer(bytes(data), dtype=np.int32)) if data is not None else None


def rotation_degrees(matrix: Sequence[int] | None) -> int:
    """Counter-clockwise rotation of a display matrix in whole degrees in [-180, 180], as ffprobe reports it."""
    if matrix is None:
        return 0
    return round(-math.degrees(math.atan2(matrix[1], matrix[0])))


def orient(image: np.ndarray, matrix: Sequence[int] | None) -> np.ndarray:
    """Turn a decoded image upright as FFmpeg's autorotate does, snapping the matrix to 90° steps (flips included)."""
    if matrix is None:
        return image
    a, b, _, c, d = matrix[:5]
    if _transposes(matrix):
        image = image.transpose(1, 0, 2)
        if c > 0:
            image = image[::-1]
        if b > 0:
            image = image[:, ::-1]
    else:
        if a < 0:
            image = image[:, ::-1]
        if d < 0:
            image = image[::-1]
    return np.ascontiguousarray(image)


def _transposes(matrix: Sequence[int] | None) -> bool:
    """Whether a display matrix swaps width and height (a rotation by ±90°)."""
    return matrix is not None and abs(matrix[0]) + abs(matrix[4]) < abs(matrix[1]) + abs(matrix[3])


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """An upright ``H×W×3`` uint8 RGB copy of a decoded frame, whatever its pixel format."""
    return orient(frame.to_ndarray(format="rgb24"), display_matrix(frame))


def _converted(path: str, frame: av.VideoFrame) -> np.ndarray:
    """``to_rgb`` with conversion failures (exotic pixel formats) reported as ``MediaError``."""
    try:
        return to_rgb(frame)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"{path}: cannot convert {frame.format.name} frames to RGB ({exc})") from None


def read_image(path: str) -> np.ndarray:
    """Decode an image to upright ``H×W×3`` uint8 RGB: EXIF orientation applied, alpha dropped, 16-bit scaled."""
    _check_file(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: {_os_problem(exc)}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is not None:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    with _Video(path) as video:
        frame = next(video.decode(), None)
        if frame is None:
            raise MediaError(f"{path}: not a readable image")
        return to_rgb(frame)
