"""Plan a file's decoding from its packets alone: which frames the sampling selects and which GOPs to decode.

The packet index (read with ``demux``, no decoding) gives every frame's presentation time and which packets
are key frames, so the sampled frames are known before anything is decoded. Each sampled frame then needs
its GOP decoded from the key frame up to it; GOPs are decoded at most once, and only the frames that are
references or targets (see ``decode``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import av

from streamdet.video.sampling import MODE_RULES, Sampling, needs_duration, select, uniform_times
from streamdet.video.trust import packed_bframes


@dataclass(frozen=True)
class Packet:
    """One video packet: its place in decode order, presentation timestamp and time (s), and key-frame flag."""

    number: int
    pts: int
    time: float
    key: bool


@dataclass
class PacketIndex:
    """A file's video packets in decode order, the frame order they present in, and where the last one ends (s).

    ``packed`` says a packet holds two MPEG-4 part 2 pictures: DivX-style packed B-frames (see ``trust``).
    """

    packets: list[Packet]
    end: float
    read_error: bool = False
    packed: bool = False
    pts_is_dts: bool = False  # every packet's pts equals its dts (or it has none): no reordering offset was written
    shown: list[Packet] = field(init=False)
    keys: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.shown = sorted(self.packets, key=lambda packet: packet.pts)
        self.keys = [packet.number for packet in self.packets if packet.key]

    def frames(self) -> Iterator[tuple[int, float, Packet]]:
        """``(index, time, packet)`` of every frame, in presentation order."""
        return ((index, packet.time, packet) for index, packet in enumerate(self.shown))

    def key_before(self, number: int) -> int | None:
        """The number of the last key packet at or before packet ``number`` in decode order."""
        position = bisect.bisect_right(self.keys, number) - 1
        return self.keys[position] if position >= 0 else None


def read_index(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> PacketIndex | None:
    """Index the stream's packets without decoding; None where frames cannot be told apart by pts.

    Packets the demuxer marks as discarded (edit lists) and empty flush packets are left out, as the decoder
    outputs no frame for them. A read error ends the index there and is flagged. MPEG-4 part 2 packets are
    read until one shows packed B-frames.
    """
    start = stream.start_time or 0
    # pts × time_base in integers: Python's int / int rounds as float(Fraction) does, at a tenth of its cost
    num, den = stream.time_base.numerator, stream.time_base.denominator
    packets: list[Packet] = []
    seen: set[int] = set()
    read_error = False
    end = 0.0
    mpeg4 = stream.codec_context.name == "mpeg4"
    packed = False
    same = True
    stores_dts = "matroska" not in container.format.name  # Matroska stores pts only: FFmpeg makes its dts up from them
    demuxed = container.demux(stream)
    while True:
        try:
            packet = next(demuxed)
        except StopIteration:
            break
        except (av.FFmpegError, OSError):
            read_error = True
            break
        if not packet.size or packet.is_discard:
            continue
        if packet.pts is None or packet.pts in seen:
            return None
        seen.add(packet.pts)
        same &= not stores_dts or packet.dts is None or packet.dts == packet.pts
        if mpeg4 and not packed:
            packed = packed_bframes(bytes(packet))
        time = (packet.pts - start) * num / den
        packets.append(Packet(len(packets), packet.pts, time, bool(packet.is_keyframe)))
        end = max(end, (packet.pts + (packet.duration or 0) - start) * num / den)
    if not packets or not packets[0].key:
        return None
    return PacketIndex(packets, end, read_error, packed, same)


def targets(index: PacketIndex, sampling: Sampling, duration: float | None) -> list[tuple[int, float, Packet]]:
    """The ``(index, time, packet)`` of each frame ``sampling`` selects, in presentation order."""
    rule = MODE_RULES[sampling.mode]
    frames = (triple for triple in index.frames() if triple[2].key) if rule.keys_only else index.frames()
    if needs_duration(sampling, len(index.shown)):
        duration = _need(duration)
        if sampling.snap == "keyframes":
            return _nearest_keys(index, uniform_times(duration, sampling.frames))
    return list(select(sampling, frames, duration, len(index.shown)))


def _need(duration: float | None) -> float:
    """The duration uniform sampling spreads its targets over (the caller measures it when the header lacks it)."""
    if duration is None:
        raise ValueError("uniform sampling needs the duration")
    return duration


def _nearest_keys(index: PacketIndex, times: Sequence[float]) -> list[tuple[int, float, Packet]]:
    """For each time, the key frame nearest to it (the earlier one on a tie), each key frame once."""
    keys = [(position, packet) for position, packet in enumerate(index.shown) if packet.key]
    key_times = [packet.time for _, packet in keys]
    chosen: dict[int, Packet] = {}
    for time in times:
        right = bisect.bisect_left(key_times, time)
        candidates = [i for i in (right - 1, right) if 0 <= i < len(keys)]
        best = min(candidates, key=lambda i: (abs(key_times[i] - time), i))
        chosen[keys[best][0]] = keys[best][1]
    return [(position, chosen[position].time, chosen[position]) for position in sorted(chosen)]


@dataclass(frozen=True)
class Segment:
    """Decode packets ``first..last`` (decode order) from a key frame, keeping the frames whose pts is in ``wanted``."""

    first: int
    last: int
    wanted: frozenset[int]


def segments(index: PacketIndex, chosen: Sequence[tuple[int, float, Packet]]) -> list[Segment]:
    """One segment per GOP holding targets: from its key frame to its last target, in decode order.

    A target shown before its GOP's key frame (an open-GOP leading picture) needs the previous GOP too,
    so its segment starts one key frame earlier.
    """
    by_gop: dict[int, list[Packet]] = {}
    for _, _, packet in chosen:
        key = index.key_before(packet.number)
        if index.packets[key].pts > packet.pts and key > 0:
            key = index.key_before(key - 1)
        by_gop.setdefault(key, []).append(packet)
    return [
        Segment(key, max(p.number for p in packets), frozenset(p.pts for p in packets))
        for key, packets in sorted(by_gop.items())
    ]


def runs(parts: Sequence[Segment]) -> list[Segment]:
    """Merge segments that touch or overlap into runs decoded in one go, so no GOP is entered twice."""
    merged: list[Segment] = []
    for part in parts:
        if merged and part.first <= merged[-1].last + 1:
            last = merged[-1]
            merged[-1] = Segment(last.first, max(last.last, part.last), last.wanted | part.wanted)
        else:
            merged.append(part)
    return merged


def split(parts: Sequence[Segment], workers: int, max_wanted: int) -> list[list[Segment]]:
    """Cut the segments, in order, into consecutive chunks for ``workers`` decoders.

    Chunks balance the packets to decode, hold at most ``max_wanted`` targets unless one segment alone has more,
    and are at least ``2 * workers`` where there are enough segments, so a slow chunk does not idle the others.
    Segments that overlap (open-GOP leading pictures) stay in one chunk, so no GOP is decoded twice.
    """
    if not parts:
        return []
    cost = sum(part.last - part.first + 1 for part in parts)
    budget = max(1, cost // max(1, 2 * workers))
    chunks: list[list[Segment]] = [[]]
    spent = wanted = 0
    for part in parts:
        size = part.last - part.first + 1
        overlaps = bool(chunks[-1]) and part.first <= chunks[-1][-1].last  # open GOP: needs the previous one
        if chunks[-1] and not overlaps and (spent + size > budget or wanted + len(part.wanted) > max_wanted):
            chunks.append([])
            spent = wanted = 0
        chunks[-1].append(part)
        spent += size
        wanted += len(part.wanted)
    return chunks
