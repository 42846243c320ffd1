"""Decode a chunk of a file's planned runs, from each run's key frame to its last target, converting only targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av

from streamdet.video.colour import converted
from streamdet.video.fileplan import FilePlan
from streamdet.video.frame import Frame
from streamdet.video.orient import display_matrix
from streamdet.video.plan import Segment
from streamdet.video.pool import OpenFiles
from streamdet.video.stats import DecodeStats
from streamdet.video.videofile import VideoFile

# A chunk of GOPs handed to one parallel decoder holds at most this many targets (unless one GOP has more),
# so work spreads evenly and a chunk's frames do not pile up.
MAX_TARGETS_PER_CHUNK = 32
# Decoded frames of one file waiting for their turn (parallel chunks decode ahead of the one being read) stay
# under this many bytes: 512 MiB is about 80 1080p RGB frames.
REORDER_BYTES = 512 << 20


def reorder_depth(video: VideoFile, chunks: list[list[Segment]], workers: int, planes: bool) -> int:
    """Frames each parallel chunk may decode ahead of its turn: its whole share of targets where
    ``REORDER_BYTES`` allows (a chunk that must wait for an earlier one keeps decoding), at least 4."""
    context = video.stream.codec_context
    frame_bytes = max(1, context.width * context.height * 3 // (2 if planes else 1))  # rgb24, or I420's 1.5 bytes
    largest = max(sum(len(part.wanted) for part in chunk) for chunk in chunks)
    return max(4, min(largest, REORDER_BYTES // (workers * frame_bytes)))


def chunk_decoder(
    files: OpenFiles, parts: list[Segment], plan: FilePlan, stats: DecodeStats, planes: bool
) -> Callable[[], Iterator[Frame]]:
    """A function decoding one chunk of runs in a borrowed copy of the file, for ``ordered``."""

    def run() -> Iterator[Frame]:
        with files.borrowed() as video:
            yield from decode_chunk(video, parts, plan, stats, planes)

    return run


def decode_chunk(
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
                yield Frame(source=path, index=index, time=time, image=converted(path, frame, matrix[0], planes))

    path = video.path
    context = video.stream.codec_context
    corrupt, decoded, damaged = video.corrupt, video.decoded, video.damaged  # a borrowed copy counted earlier chunks
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
        missing = sum(len(part.wanted) for part in parts) - len(found)
        stats.add(video.corrupt - corrupt, video.decoded - decoded, missing, video.damaged - damaged)
