"""A file's decoding plan: its packet index read, the sampled frames chosen, and the GOP segments that decode them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streamdet.video.plan import Packet, Segment, read_index, segments, targets
from streamdet.video.sampling import MODE_RULES, Sampling
from streamdet.video.stats import DecodeStats
from streamdet.video.trust import timestamp_problem
from streamdet.video.videofile import VideoFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilePlan:
    """The sampled frames of a file, the segments that decode them, and where each frame and packet sits."""

    chosen: list[tuple[int, float, Packet]]
    parts: list[Segment]
    where: dict[int, tuple[int, float]]
    number_of: dict[int, int]


def plan_file(video: VideoFile, sampling: Sampling, stats: DecodeStats) -> FilePlan | None:
    """Index the packets and choose the targets; None (and the file reopened) where its timestamps cannot place
    frames (missing, repeated or wrong: ``video.untrusted`` then says why), so it is decoded in order instead."""
    index = read_index(video.container, video.stream)
    if index is None:
        video.reopen()
        return None
    duration = video.duration
    if duration is None and MODE_RULES[sampling.mode].uses_duration:
        duration = video.require_duration()
    stats.note_end(index.end, duration, video.fps, index.read_error)
    reorders = bool(video.stream.codec_context.has_b_frames)
    problem = timestamp_problem([packet.pts for packet in index.packets], reorders, index.packed, index.pts_is_dts)
    if problem is not None:
        log.info("%s: %s, so every frame is decoded in order", video.path, problem)
        video.untrusted = problem
        video.reopen()
        return None
    chosen = targets(index, sampling, duration)
    return FilePlan(
        chosen=chosen,
        parts=segments(index, chosen),
        where={packet.pts: (position, time) for position, time, packet in chosen},
        number_of={packet.pts: packet.number for packet in index.packets},
    )
