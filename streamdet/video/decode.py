"""Entry points of the media layer: ``probe`` a file and ``iter_frames`` its sampled frames, failures as ``MediaError``.

The jobs behind them have their own modules: ``opening`` and ``sniff`` (open a file, name a damaged one),
``videofile`` (packet-by-packet decoding), ``fileplan`` and ``plan`` (which packets to decode), ``chunks`` and
``pool`` (decoding planned runs, in parallel), ``orient`` and ``colour`` (upright RGB or planes), ``image``.

Frames come in presentation order, which is the decoder's output order, as FFmpeg's players show them.
``index`` is a frame's position in that order and ``time`` its presentation time in seconds from the stream
start: the pts (never index / fps, so variable-frame-rate video is timed correctly). Files are planned from their
packet index, so ``index`` is exact even where frames between targets are never decoded. Where the packet
timestamps cannot place frames (missing or repeated pts, packed B-frames, pts in decode order: see ``trust``),
the file is decoded in order, frame by frame, and timed by FFmpeg's best-effort rule (``timing``). Live URLs
are decoded in order too; there, ``keyframes`` mode estimates the index as ``round(time * average_fps)``.
See docs/frames.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamdet.errors import MediaError
from streamdet.video.animation import animation_timing, decoded_by_pillow, iter_animation
from streamdet.video.chunks import MAX_TARGETS_PER_CHUNK, chunk_decoder, decode_chunk, reorder_depth
from streamdet.video.colour import converted
from streamdet.video.fileplan import plan_file
from streamdet.video.frame import Frame
from streamdet.video.headers import check_pixels
from streamdet.video.image import read_image
from streamdet.video.orient import display_matrix, rotation_degrees, transposes
from streamdet.video.parallel import ordered, workers_available
from streamdet.video.plan import runs, split
from streamdet.video.pool import OpenFiles
from streamdet.video.sampling import MODE_RULES, Sampling, needs_duration, select
from streamdet.video.sources import is_url, media_kind
from streamdet.video.stats import DecodeStats
from streamdet.video.videofile import VideoFile


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
    codec = Path(path).suffix[1:].lower()
    if media_kind(path) == "image":
        image = read_image(path)
        return VideoInfo(path, image.shape[1], image.shape[0], 0.0, 1, None, 0, codec, "rgb24")
    if decoded_by_pillow(path):
        (width, height), starts, duration = animation_timing(path)
        fps = len(starts) / duration if duration > 0 else None
        return VideoInfo(path, width, height, duration, len(starts), fps, 0, codec, "rgb24")
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
    by side do not each start a thread per core. An image yields one frame (index 0, time 0); animated GIF and
    WebP are sampled as videos (see ``animation``). Errors surface as ``MediaError``. ``planes`` yields 8-bit
    4:2:0 frames as ``YuvImage`` (no RGB conversion on the CPU; see ``yuv_image``). Pictures of more than
    ``max_pixels`` (default ``headers.DEFAULT_MAX_PIXELS``) are refused from the header, before decoding.
    """
    path = str(path)
    stats = stats if stats is not None else DecodeStats()
    if media_kind(path) == "image":
        stats.decoded = stats.sampled = 1
        yield Frame(source=path, index=0, time=0.0, image=read_image(path, max_pixels))
        return
    if decoded_by_pillow(path):
        yield from iter_animation(path, sampling, stats)
        return
    budget = cores or workers_available()
    with VideoFile(path, budget if cores else 0) as video:
        check_pixels(path, video.stream.codec_context.width, video.stream.codec_context.height, max_pixels)
        stats.duration = video.duration  # the header's; the plan measures it where the header lacks it
        plan = None if is_url(path) else plan_file(video, sampling, stats)
        if plan is None:
            yield from _linear(video, sampling, stats, planes)
            return
        if not plan.chosen:
            raise MediaError(f"{path}: video stream has no frames")
        chunks = [chunk for chunk in split(plan.parts, workers, MAX_TARGETS_PER_CHUNK) if chunk]
        if workers <= 1 or len(chunks) <= 1:
            yield from _counted(decode_chunk(video.rewound(), runs(plan.parts), plan, stats, planes), stats)
        else:
            with OpenFiles(path, max(1, budget // workers), video) as files:
                decoders = [chunk_decoder(files, runs(chunk), plan, stats, planes) for chunk in chunks]
                depth = reorder_depth(video, chunks, min(workers, len(decoders)), planes)
                yield from _counted(ordered(decoders, min(workers, len(decoders)), depth), stats)
    if stats.sampled == 0:
        raise MediaError(f"{path}: no decodable video frames ({stats.corrupt} corrupt packets)")


def _counted(frames: Iterator[Frame], stats: DecodeStats) -> Iterator[Frame]:
    """Pass frames on, counting them as sampled."""
    for frame in frames:
        stats.sampled += 1
        yield frame


def _linear(video: VideoFile, sampling: Sampling, stats: DecodeStats, planes: bool = False) -> Iterator[Frame]:
    """Decode every frame from the start and select as frames come, in the decoder's output order (streams, and
    files whose timestamps cannot place frames). Only a stream's ``keyframes`` skip the other frames."""
    total = video.frame_count
    keys_only = MODE_RULES[sampling.mode].keys_only
    if keys_only and is_url(video.path):
        video.stream.codec_context.skip_frame = "NONKEY"
        chosen = select(sampling, video.estimated(), None, total)
    else:
        frames = (triple for triple in video.indexed() if triple[2].key_frame) if keys_only else video.indexed()
        chosen = select(sampling, frames, video.require_duration() if needs_duration(sampling, total) else None, total)
    for index, time, frame in chosen:
        stats.sampled += 1
        yield Frame(source=video.path, index=index, time=time, image=converted(video.path, frame, True, planes))
    stats.corrupt, stats.decoded, stats.damaged = video.corrupt, video.decoded, video.damaged
    if video.decoded == 0:
        raise video.nothing_decoded()
