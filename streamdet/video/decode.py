"""Read frames from video files, streams and images as RGB ``Frame``s, with every failure as a ``MediaError``.

Frame ``time`` is the presentation time in seconds from the stream start, taken from ``pts * time_base``
(never from index / fps, so variable-frame-rate video is timed correctly). Frame ``index`` is the frame's
position among all frames of the stream in presentation order, read from the packet index, so it is exact
even where frames between targets are never decoded. Inputs without packet timestamps (raw elementary
streams, live URLs) are decoded linearly; there, ``keyframes`` mode estimates the index as
``round(time * average_fps)``, exact for constant-frame-rate video.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from streamdet.errors import MediaError
from streamdet.video.frame import Frame, YuvImage
from streamdet.video.parallel import ordered, workers_available
from streamdet.video.plan import Packet, Segment, read_index, runs, segments, split, targets
from streamdet.video.sampling import Sampling, select
from streamdet.video.stats import DecodeStats
from streamdet.video.headers import check_image_header, check_pixels
from streamdet.video.sources import is_url, media_kind, special_file

log = logging.getLogger(__name__)

# A chunk of GOPs handed to one parallel decoder holds at most this many targets (unless one GOP has more),
# so work spreads evenly and a chunk's frames do not pile up.
MAX_TARGETS_PER_CHUNK = 32
# Decoded frames of one file waiting for their turn (parallel chunks decode ahead of the one being read) stay
# under this many bytes: 512 MiB is about 80 1080p RGB frames.
REORDER_BYTES = 512 << 20

_HEAD_BYTES = 512

# Demuxers (FFmpeg names) whose seeks use a sample index and so land exactly on a key frame's packet.
SEEKABLE_FORMATS = {"mov", "mp4", "matroska", "webm"}

_Triple = tuple[int, float, av.VideoFrame]

# Pixel formats sent as planes (``planes=True``), each with whether it is full range by definition.
PLANAR_420 = {"yuv420p": False, "yuvj420p": True}
# FFmpeg's colour-matrix tags (AVColorSpace) it converts with BT.709, and with BT.601 (unspecified included).
BT709 = 1
BT601 = {2, 5, 6}
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


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
    with VideoFile(path) as video:
        first = next(video.decode(), None)
        if first is None:
            raise video.nothing_decoded()
        matrix = display_matrix(first)
        width, height = (first.height, first.width) if transposes(matrix) else (first.width, first.height)
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


def iter_frames(
    path: str | Path,
    sampling: Sampling = Sampling(),
    stats: DecodeStats | None = None,
    workers: int = 1,
    planes: bool = False,
    cores: int = 0,
    max_pixels: int | None = None,
) -> Iterator[Frame]:
    """Yield the frames of a video or image that ``sampling`` selects, as upright RGB images, in presentation order.

    Files are planned from their packet index and decoded GOP by GOP (by up to ``workers`` threads, each with
    its own decoder); inputs without usable timestamps are decoded linearly. ``stats``, if given, is filled in
    with what was lost. ``cores`` caps the decoder threads of this file (0: all cores), so that files decoded side
    by side do not each start a thread per core. An image yields one frame (index 0, time 0). Errors surface as
    ``MediaError``. ``planes`` yields 8-bit 4:2:0 frames as ``YuvImage`` (no RGB conversion on the CPU; see
    ``yuv_image``). Pictures of more than ``max_pixels`` (default ``headers.DEFAULT_MAX_PIXELS``) are refused
    from the header, before decoding.
    """
    path = str(path)
    stats = stats if stats is not None else DecodeStats()
    if media_kind(path) == "image":
        stats.decoded = stats.sampled = 1
        yield Frame(source=path, index=0, time=0.0, image=read_image(path, max_pixels))
        return
    budget = cores or workers_available()
    with VideoFile(path, budget if cores else 0) as video:
        check_pixels(path, video.stream.codec_context.width, video.stream.codec_context.height, max_pixels)
        plan = None if is_url(path) else plan_file(video, sampling, stats)
        if plan is None:
            yield from _linear(video, sampling, stats, planes)
            return
        if not plan.chosen:
            raise MediaError(f"{path}: video stream has no frames")
        chunks = [chunk for chunk in split(plan.parts, workers, MAX_TARGETS_PER_CHUNK) if chunk]
        if workers <= 1 or len(chunks) <= 1:
            yield from _counted(_decode_chunk(video.rewound(), runs(plan.parts), plan, stats, planes), stats)
        else:
            with OpenFiles(path, max(1, budget // workers), video) as files:
                decoders = [chunk_decoder(files, runs(chunk), plan, stats, planes) for chunk in chunks]
                depth = _reorder_depth(video, chunks, min(workers, len(decoders)), planes)
                yield from _counted(ordered(decoders, min(workers, len(decoders)), depth), stats)
    if stats.sampled == 0:
        raise MediaError(f"{path}: no decodable video frames ({stats.corrupt} corrupt packets)")


@dataclass(frozen=True)
class FilePlan:
    """The sampled frames of a file, the segments that decode them, and where each frame and packet sits."""

    chosen: list[tuple[int, float, Packet]]
    parts: list[Segment]
    where: dict[int, tuple[int, float]]
    number_of: dict[int, int]


def plan_file(video: VideoFile, sampling: Sampling, stats: DecodeStats) -> FilePlan | None:
    """Index the packets and choose the targets; None (and the file reopened) where it has no usable timestamps."""
    index = read_index(video.container, video.stream)
    if index is None:
        video.reopen()
        return None
    duration = video.duration
    if duration is None and sampling.mode == "uniform":
        duration = video.require_duration()
    stats.note_end(index.end, duration, video.fps, index.read_error)
    chosen = targets(index, sampling, duration)
    return FilePlan(
        chosen=chosen,
        parts=segments(index, chosen),
        where={packet.pts: (position, time) for position, time, packet in chosen},
        number_of={packet.pts: packet.number for packet in index.packets},
    )


def _reorder_depth(video: VideoFile, chunks: list[list[Segment]], workers: int, planes: bool) -> int:
    """Frames each parallel chunk may decode ahead of its turn: its whole share of targets where
    ``REORDER_BYTES`` allows (a chunk that must wait for an earlier one keeps decoding), at least 4."""
    context = video.stream.codec_context
    frame_bytes = max(1, context.width * context.height * 3 // (2 if planes else 1))  # rgb24, or I420's 1.5 bytes
    largest = max(sum(len(part.wanted) for part in chunk) for chunk in chunks)
    return max(4, min(largest, REORDER_BYTES // (workers * frame_bytes)))


def _counted(frames: Iterator[Frame], stats: DecodeStats) -> Iterator[Frame]:
    """Pass frames on, counting them as sampled."""
    for frame in frames:
        stats.sampled += 1
        yield frame


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


def chunk_decoder(
    files: OpenFiles, parts: list[Segment], plan: FilePlan, stats: DecodeStats, planes: bool
) -> Callable[[], Iterator[Frame]]:
    """A function decoding one chunk of runs in a borrowed copy of the file, for ``ordered``."""

    def run() -> Iterator[Frame]:
        with files.borrowed() as video:
            yield from _decode_chunk(video, parts, plan, stats, planes)

    return run


def _decode_chunk(
    video: VideoFile, parts: list[Segment], plan: FilePlan, stats: DecodeStats, planes: bool = False
) -> Iterator[Frame]:
    """Decode each run from its key frame to its last target, converting only the targets.

    Frames that are neither targets nor references are skipped by the decoder (``skip_frame`` NONREF while
    the packet is not a target); each run ends by draining the decoder, so nothing past its last target is
    decoded, and no packet before a run's first key frame reaches the decoder.
    """
    found: set[int] = set()
    matrix: list[tuple[int, ...] | None] = []  # the stream's display matrix, read from its first frame only

    def keep(frames: Iterator[av.VideoFrame], wanted: frozenset[int]) -> Iterator[Frame]:
        for frame in frames:
            if frame.pts in wanted and frame.pts not in found:
                found.add(frame.pts)
                index, time = plan.where[frame.pts]
                if not matrix:
                    matrix.append(display_matrix(frame))
                yield Frame(source=path, index=index, time=time, image=_converted(path, frame, matrix[0], planes))

    path = video.path
    context = video.stream.codec_context
    corrupt, decoded = video.corrupt, video.decoded  # a borrowed copy has counted its earlier chunks already
    packets = video.numbered(parts[0].first, plan.number_of)
    try:
        for part in parts:
            for number, packet in packets:
                if number < part.first:
                    continue
                context.skip_frame = "DEFAULT" if packet.pts in part.wanted else "NONREF"
                yield from keep(video.decode_packet(packet), part.wanted)
                if number >= part.last:
                    break
            context.skip_frame = "DEFAULT"
            yield from keep(video.decode_packet(None), part.wanted)
            context.flush_buffers()
    finally:
        stats.add(video.corrupt - corrupt, video.decoded - decoded, sum(len(part.wanted) for part in parts) - len(found))


def _linear(video: VideoFile, sampling: Sampling, stats: DecodeStats, planes: bool = False) -> Iterator[Frame]:
    """Decode from the start and select as frames come (streams, files without timestamps)."""
    total = video.frame_count
    if sampling.mode == "keyframes":
        video.stream.codec_context.skip_frame = "NONKEY"
        chosen = video.estimated()
    else:
        uniform = sampling.mode == "uniform" and (total is None or total > sampling.frames)
        chosen = select(sampling, video.indexed(), video.require_duration() if uniform else None, total)
    for index, time, frame in chosen:
        stats.sampled += 1
        yield Frame(source=video.path, index=index, time=time, image=_converted(video.path, frame, True, planes))
    stats.corrupt, stats.decoded = video.corrupt, video.decoded
    if video.decoded == 0:
        raise video.nothing_decoded()


class VideoFile:
    """An open video stream that decodes packet by packet, skipping corrupt ones, with errors as ``MediaError``."""

    def __init__(self, path: str, threads: int = 0) -> None:
        self.path = path
        self.threads = threads
        self.decoded = 0
        self.corrupt = 0
        self._open()

    def _open(self) -> None:
        """Open the file and its video stream, with threaded decoding (``threads`` 0: as many as FFmpeg likes)."""
        self.container = _open_container(self.path)
        self.stream = _video_stream(self.container, self.path)
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = self.threads
        self.start = self.stream.start_time or 0

    def reopen(self) -> None:
        """Start again from the beginning of the file, for inputs that cannot seek back."""
        self.container.close()
        self._open()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.container.close()
        if self.corrupt and exc_info[0] is None:  # a failure's own error says what was lost: one line, not two
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
            raise MediaError(f"{self.path}: duration unknown, so uniform sampling is impossible; use --fps or --every")
        return duration

    @property
    def seeks_exactly(self) -> bool:
        """Whether the container has a sample index (MP4/MOV, Matroska), so a seek lands on the packet asked for.

        Others (MPEG-TS, elementary streams) seek by bytes and can resume mid-packet; they are reopened instead.
        """
        return bool(set(self.container.format.name.split(",")) & SEEKABLE_FORMATS)

    def rewound(self) -> VideoFile:
        """This video, moved back to its first packet (reusing the open file saves probing it again)."""
        try:
            if not self.seeks_exactly:
                raise OSError("no sample index")
            self.container.seek(self.start, stream=self.stream, backward=True, any_frame=False)
        except (av.FFmpegError, OSError):
            self.reopen()
        return self

    def numbered(self, first: int, number_of: dict[int, int]) -> Iterator[tuple[int, av.Packet]]:
        """``(decode-order number, packet)`` from packet ``first`` (or a little before) to the end.

        Seeks to the key frame at or before packet ``first`` where that helps; if the demuxer lands past it,
        reads from the start instead, so no packet of the plan is ever missed.
        """
        exact = self.seeks_exactly
        target = next((pts for pts, number in number_of.items() if number == first), None) if first and exact else None
        if target is not None:
            try:
                self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            except (av.FFmpegError, OSError):
                self.reopen()
        landed = False
        for packet in self._packets():
            number = number_of.get(packet.pts) if packet.size else None
            if number is None:
                continue
            if not landed:
                landed = True
                if number > first:
                    self.reopen()
                    yield from self.numbered(0, number_of)
                    return
            yield number, packet

    def decode_packet(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """The frames one packet completes (``None`` drains the decoder); a rejected packet counts as corrupt."""
        try:
            frames = self.stream.decode(packet)
        except av.FFmpegError:
            self.corrupt += 1
            return []
        if packet is not None and packet.is_corrupt:
            self.corrupt += 1
        self.decoded += len(frames)
        return frames

    def decode(self) -> Iterator[av.VideoFrame]:
        """Decode from the current position to the end, skipping packets the decoder rejects."""
        for packet in self._packets():
            yield from self.decode_packet(packet)

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
    kind = None if container.streams else container.format.long_name or container.format.name
    container.close()
    if kind is not None:  # e.g. an MP4 whose index (moov) is zeroed: the container is there, its list of streams is not
        raise MediaError(f"{path}: damaged {kind} file: its header describes no streams")
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
        if problem := special_file(path, info):
            raise MediaError(problem)
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


def upright_steps(matrix: Sequence[int] | None) -> tuple[bool, bool, bool]:
    """(transpose, flip rows, flip columns), in that order, that turn a picture upright as FFmpeg's autorotate does.

    The display matrix is snapped to 90° steps (flips included).
    """
    if matrix is None:
        return False, False, False
    a, b, _, c, d = matrix[:5]
    if transposes(matrix):
        return True, c > 0, b > 0
    return False, d < 0, a < 0


def orient(image: np.ndarray, matrix: Sequence[int] | None) -> np.ndarray:
    """Turn a decoded ``H×W×C`` image upright as FFmpeg's autorotate does (see ``upright_steps``)."""
    transpose, flip_rows, flip_cols = upright_steps(matrix)
    if transpose:
        image = image.transpose(1, 0, 2)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def transposes(matrix: Sequence[int] | None) -> bool:
    """Whether a display matrix swaps width and height (a rotation by ±90°)."""
    return matrix is not None and abs(matrix[0]) + abs(matrix[4]) < abs(matrix[1]) + abs(matrix[3])


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """An upright ``H×W×3`` uint8 RGB copy of a decoded frame, whatever its pixel format."""
    return orient(frame.to_ndarray(format="rgb24", threads=1), display_matrix(frame))


def yuv_image(frame: av.VideoFrame, matrix: Sequence[int] | None) -> YuvImage | None:
    """The frame's planes as a ``YuvImage`` to turn by ``matrix``, where the device conversion matches FFmpeg's.

    That is 8-bit planar 4:2:0 with even sides (FFmpeg's rgb24 then repeats each chroma sample over 2×2
    pixels; odd sides and NV12 take its interpolating path) and a BT.601 or BT.709 matrix; None otherwise.
    """
    name = frame.format.name
    if name not in PLANAR_420 or frame.width % 2 or frame.height % 2:
        return None
    if frame.colorspace != BT709 and frame.colorspace not in BT601:
        return None
    full = PLANAR_420[name] or frame.color_range == FULL_RANGE
    turn = upright_steps(matrix)
    return YuvImage(frame.to_ndarray(), frame.width, frame.height, frame.colorspace == BT709, full, turn)


def _converted(
    path: str, frame: av.VideoFrame, matrix: Sequence[int] | None | bool = True, planes: bool = False
) -> np.ndarray | YuvImage:
    """Upright RGB as ``to_rgb``, turned by ``matrix`` if given (``True``: the frame's own), errors as ``MediaError``.

    With ``planes``, a ``YuvImage`` instead where ``yuv_image`` takes the frame.
    """
    try:
        if matrix is True:
            matrix = display_matrix(frame)
        if planes and (image := yuv_image(frame, matrix)) is not None:
            return image
        return orient(frame.to_ndarray(format="rgb24", threads=1), matrix)  # threads=1: no swscale pool per frame
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"{path}: cannot convert {frame.format.name} frames to RGB ({exc})") from None


def read_image(path: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image to upright ``H×W×3`` uint8 RGB: EXIF orientation applied, alpha dropped, 16-bit scaled.

    One above ``max_pixels`` is refused from its header, before decoding (see ``streamdet.video.headers``).
    """
    _check_file(path)
    check_image_header(path, max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: {_os_problem(exc)}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is not None:
        check_pixels(path, image.shape[1], image.shape[0], max_pixels)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second copy of a large image
    with VideoFile(path) as video:
        frame = next(video.decode(), None)
        if frame is None:
            raise MediaError(f"{path}: not a readable image")
        return to_rgb(frame)
