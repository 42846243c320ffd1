"""Exact frames on the files people have, against FFmpeg's own decode: B-frames with broken timestamps, packed
B-frames, MPEG-2 and MPEG-4 part 2, open GOPs, variable frame rate and missing timestamps, in every sampling mode.

The files are made here with the ``ffmpeg`` CLI; the reference is the ``ffmpeg`` CLI's own decode of each (every
frame it outputs, in its presentation order, as rgb24) and ``ffprobe``'s frame times and key flags. Frame
times follow FFmpeg's best-effort timestamp as it settles over a whole file: the pts where they increase
through the file, else the decode timestamps FFmpeg attaches to each output frame, and where neither exists
(a raw stream, the decoder's drain) the previous time plus one frame at the stream's rate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from .sampling_reference import reference_pick
from streamdet.video import DecodeStats, Sampling, iter_frames
from streamdet.video.fileplan import plan_file
from streamdet.video.videofile import VideoFile

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="needs the ffmpeg and ffprobe CLIs for the reference decode",
)

SPECS = ["all", "uniform:5", "uniform:16", "every:7", "fps:1.5", "keyframes"]
SIZE = (64, 48)
SOURCE = f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=10:duration=4"  # 40 frames, each different
X264 = "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=normal"


def ffmpeg(*args: str) -> bytes:
    """Run the ffmpeg CLI quietly and return its standard output."""
    return subprocess.run(["ffmpeg", "-v", "error", "-y", *args], capture_output=True, check=True).stdout


def has_encoder(name: str) -> bool:
    """Whether this ffmpeg build has encoder ``name``."""
    listing = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in listing.splitlines() if line.startswith(" V"))


def make_cases(root: Path) -> dict[str, Path]:
    """One file per property, all 40 frames of the same test pattern at 10 fps with a key frame every 12."""
    made: dict[str, Path] = {}

    def encode(name: str, *options: str, source: str = SOURCE) -> Path:
        made[name] = root / name
        ffmpeg("-f", "lavfi", "-i", source, *options, str(made[name]))
        return made[name]

    def remux(name: str, original: Path, *options: str) -> None:
        made[name] = root / name
        ffmpeg("-i", str(original), "-c", "copy", *options, str(made[name]))

    bframes = encode("bframes.mp4", "-c:v", "libx264", "-x264-params", X264, "-pix_fmt", "yuv420p")
    # pts = dts: the muxer fault; shifted to start at 0, and as written (the leading frames then cut by the edit list)
    remux("pts_dts.mp4", bframes, "-bsf:v", "setts=pts=DTS-STARTDTS:dts=DTS-STARTDTS")
    remux("pts_dts_edit.mp4", bframes, "-bsf:v", "setts=pts=DTS")
    remux("pts_dts.mkv", bframes, "-bsf:v", "setts=pts=DTS")  # Matroska stores pts only
    encode("mpeg4.avi", "-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "3")
    encode("mpeg2.mpg", "-c:v", "mpeg2video", "-bf", "2", "-g", "12", "-q:v", "3")
    if has_encoder("libxvid"):  # XviD writes packed B-frames into AVI, as DivX did
        packed = encode("packed.avi", "-c:v", "libxvid", "-bf", "2", "-g", "12", "-q:v", "3")
        remux("unpacked.avi", packed, "-bsf:v", "mpeg4_unpack_bframes")
    open_gop = ["-c:v", "libx264", "-x264-params", X264 + ":open_gop=1", "-pix_fmt", "yuv420p"]
    encode("open_gop.mp4", *open_gop)
    encode("open_gop.ts", *open_gop)
    # variable frame rate: every fifth frame dropped, the rest keep their times
    encode("vfr.mp4", "-vf", "select='not(eq(mod(n\\,5)\\,3))'", "-fps_mode", "vfr", "-c:v", "libx264", "-x264-params", X264, "-pix_fmt", "yuv420p")
    encode("raw.h264", "-c:v", "libx264", "-x264-params", X264, "-pix_fmt", "yuv420p")  # no timestamps at all
    return made


def probe(path: Path) -> dict:
    """ffprobe's stream facts and every frame's timestamps and key flag."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=time_base,start_pts,duration,r_frame_rate,nb_frames:format=duration"
         ":frame=pts,pkt_dts,best_effort_timestamp,key_frame", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def reference(path: Path) -> tuple[list[np.ndarray], list[float], list[bool], float]:
    """FFmpeg's frames of ``path`` in presentation order as rgb24, their times and key flags, and the duration."""
    info = probe(path)
    stream, frames = info["streams"][0], info["frames"]
    data = ffmpeg("-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    width, height = SIZE
    images = [np.frombuffer(data, np.uint8, width * height * 3, offset).reshape(height, width, 3)
              for offset in range(0, len(data), width * height * 3)]
    assert len(images) == len(frames)
    time_base, rate = Fraction(stream["time_base"]), float(Fraction(stream["r_frame_rate"]))
    start = stream.get("start_pts") or 0
    pts = [frame.get("pts") for frame in frames]
    settled = "best_effort_timestamp" if None not in pts and all(a < b for a, b in zip(pts, pts[1:])) else "pkt_dts"
    times: list[float] = []
    for frame in frames:
        stamp = frame.get(settled)
        time = None if stamp is None else float((stamp - start) * time_base)
        if times and (time is None or time <= times[-1]):
            time = times[-1] + 1 / rate
        times.append(time if time is not None else 0.0)
    duration = stream.get("duration") or info["format"].get("duration")
    duration = float(duration) if duration is not None else len(frames) / rate
    return images, times, [bool(frame["key_frame"]) for frame in frames], duration


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple]]:
    root = tmp_path_factory.mktemp("frames")
    return {name: (path, reference(path)) for name, path in make_cases(root).items()}


CASES = ["bframes.mp4", "pts_dts.mp4", "pts_dts_edit.mp4", "pts_dts.mkv", "mpeg4.avi", "mpeg2.mpg", "packed.avi",
         "unpacked.avi", "open_gop.mp4", "open_gop.ts", "vfr.mp4", "raw.h264"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("case", CASES)
def test_sampled_frames_are_ffmpegs(cases: dict, case: str, spec: str, workers: int) -> None:
    """Same frames (pixel for pixel), indices and times as FFmpeg's presentation order; nothing reported lost."""
    if case not in cases:
        pytest.skip("this ffmpeg has no libxvid encoder to write packed B-frames with")
    path, (images, times, keys, duration) = cases[case]
    expected = reference_pick(times, keys, duration, spec)
    stats = DecodeStats()
    frames = list(iter_frames(path, Sampling.parse(spec), stats, workers=workers))
    assert stats.warning() is None, "an intact file reports no loss"
    assert [frame.index for frame in frames] == expected
    assert [frame.time for frame in frames] == pytest.approx([times[i] for i in expected], abs=1e-6)
    for frame in frames:
        assert np.array_equal(frame.image, images[frame.index]), (case, spec, frame.index)


@pytest.mark.parametrize(
    ("case", "problem"),
    [("bframes.mp4", None), ("pts_dts.mp4", "pts in decode order"), ("pts_dts.mkv", "pts in decode order"),
     ("packed.avi", "packed B-frames"),
     ("unpacked.avi", None), ("mpeg4.avi", None), ("open_gop.ts", None), ("vfr.mp4", None)],
)
def test_untrusted_timestamps_are_recognised(cases: dict, case: str, problem: str | None) -> None:
    """Files whose timestamps place frames keep the fast GOP plan; the others are named and decoded in order."""
    if case not in cases:
        pytest.skip("this ffmpeg has no libxvid encoder to write packed B-frames with")
    with VideoFile(str(cases[case][0])) as video:
        plan = plan_file(video, Sampling("uniform", frames=4), DecodeStats())
        assert (plan is None) == (problem is not None)
        assert video.untrusted is None if problem is None else problem in video.untrusted


def test_a_stream_that_allows_b_frames_but_uses_none_keeps_its_gop_plan(tmp_path: Path) -> None:
    """x264 allows B-frames (has_b_frames) but puts none in a few simple frames: the pts only increase in decode
    order, yet the dts lag them by the reorder delay, so the pts are right and the file is planned by GOPs."""
    import av

    from .media import make_video

    path = make_video(tmp_path / "no_b.mp4", 12, (1920, 1080), 30)  # x264 chooses no B-frame for these
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.has_b_frames
        packets = [(p.pts, p.dts) for p in container.demux(stream) if p.size]
    assert all(a < b for (a, _), (b, _) in zip(packets, packets[1:])) and packets[0][1] < packets[0][0]
    with VideoFile(str(path)) as video:
        assert plan_file(video, Sampling(mode="all"), DecodeStats()) is not None and video.untrusted is None
