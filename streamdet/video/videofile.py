"""An open video stream decoded packet by packet: corrupt packets skipped and counted, errors as ``MediaError``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import av

from streamdet.errors import MediaError
from streamdet.video.opening import open_container, video_stream
from streamdet.video.sources import is_url
from streamdet.video.timing import BestEffort

log = logging.getLogger(__name__)

# Demuxers (FFmpeg names) whose seeks use a sample index and so land exactly on a key frame's packet.
SEEKABLE_FORMATS = {"mov", "mp4", "matroska", "webm"}

_Triple = tuple[int, float, av.VideoFrame]


class VideoFile:
    """An open video stream that decodes packet by packet, skipping corrupt ones, with errors as ``MediaError``.

    ``corrupt`` counts packets the decoder rejected or the demuxer flagged, ``damaged`` frames the decoder output
    with errors in them (concealed), ``decoded`` frames output. ``untrusted`` says why the packet timestamps are
    wrong, where the plan found out (see ``trust``); frame times then come from the decode timestamps.
    """

    def __init__(self, path: str, threads: int = 0) -> None:
        self.path = path
        self.threads = threads
        self.decoded = 0
        self.corrupt = 0
        self.damaged = 0
        self.untrusted: str | None = None
        self._open()

    def _open(self) -> None:
        """Open the file and its video stream, with threaded decoding (``threads`` 0: as many as FFmpeg likes)."""
        self.container = open_container(self.path)
        self.stream = video_stream(self.container, self.path)
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
        if self.damaged:
            log.warning("%s: %d frame(s) decoded with errors", self.path, self.damaged)

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
        """Average frames per second (frames / duration for variable frame rate); for streams whose headers have
        no timing (raw elementary streams), the codec's own rate, as FFmpeg guesses it."""
        average = self.stream.average_rate if self.duration is not None else None
        rate = average or self.stream.guessed_rate or self.stream.average_rate
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
            duration = scan_duration(self.path, self.stream.index, self.fps)
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
        self.damaged += sum(frame.is_corrupt for frame in frames)
        return frames

    def decode(self) -> Iterator[av.VideoFrame]:
        """Decode from the current position to the end, skipping packets the decoder rejects."""
        for packet in self._packets():
            yield from self.decode_packet(packet)

    def timed(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames in output order with their time in seconds from the stream start (see ``BestEffort``)."""
        clock = BestEffort(self.start, self.stream.time_base, self.fps, ignore_pts=self.untrusted is not None)
        for frame in self.decode():
            yield clock.time(frame), frame

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


def scan_duration(path: str, stream_index: int, fps: float | None) -> float | None:
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
