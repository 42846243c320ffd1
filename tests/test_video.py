"""Tests for the media input layer: sampling rules, video/image decoding, errors and input expansion."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest

from .media import (
    corner_levels,
    corrupt_packets,
    index_bars,
    make_audio,
    make_video,
    orientation_marks,
    read_index,
    write_animation,
    write_image,
    write_jpeg_with_orientation,
)
from .sampling_reference import reference_pick
from streamdet.errors import ConfigError, MediaError
from streamdet.video import DecodeStats, Frame, Sampling, VideoInfo, expand_inputs, iter_frames, probe
from streamdet.video import chunks
from streamdet.video.orient import orient
from streamdet.video.plan import Segment
from streamdet.video.videofile import VideoFile
from streamdet.video.sampling import pick_every, pick_fps, pick_shown_at, select, uniform_times

VFR_TIMES = [0.0, 0.04, 0.08, 0.3, 0.31, 0.32, 1.0, 1.5, 1.51, 2.0]


def frames_of(path: Path, spec: str) -> list[Frame]:
    """Decode ``path`` with the sampling rule ``spec``."""
    return list(iter_frames(path, Sampling.parse(spec)))


def indices(frames: list[Frame]) -> list[int]:
    """The index of each frame, checked against the index drawn into its pixels."""
    assert [read_index(frame.image) for frame in frames] == [frame.index for frame in frames]
    return [frame.index for frame in frames]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by the tests of this module for videos that are only read."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def cfr(media_dir: Path) -> Path:
    """30 frames at 10 fps: frame i is shown from i/10 s."""
    return make_video(media_dir / "cfr.mp4", n_frames=30, fps=10)


@pytest.fixture(scope="module")
def vfr(media_dir: Path) -> Path:
    """10 frames at the irregular times ``VFR_TIMES``."""
    return make_video(media_dir / "vfr.mp4", n_frames=len(VFR_TIMES), times=VFR_TIMES)


@pytest.fixture(scope="module")
def gop10(media_dir: Path) -> Path:
    """100 frames at 10 fps with a key frame every 10 frames."""
    return make_video(media_dir / "gop10.mp4", n_frames=100, fps=10, gop=10)


# --- sampling rules, without video -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("uniform", Sampling("uniform", frames=16)),
        ("uniform:5", Sampling("uniform", frames=5)),
        ("every:3", Sampling("every", every=3)),
        ("fps:2.5", Sampling("fps", fps=2.5)),
        (" Keyframes ", Sampling("keyframes")),
        ("all", Sampling("all")),
    ],
)
def test_parse_accepts_each_mode(spec: str, expected: Sampling) -> None:
    assert Sampling.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("sometimes", "mode must be one of"),
        ("every", "needs a value"),
        ("fps:fast", "not a valid number"),
        ("uniform:2.5", "not a valid number"),
        ("all:3", "takes no value"),
        ("every:0", "sampling.every: must be greater than or equal to 1, not 0"),
        ("uniform:-4", "sampling.frames: must be greater than or equal to 1, not -4"),
        ("fps:0", "sampling.fps: must be greater than 0, not 0.0"),
        ("fps:nan", "sampling.fps: must be greater than 0, not nan"),
    ],
)
def test_parse_rejects_bad_specs_with_one_line(spec: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        Sampling.parse(spec)
    assert "\n" not in str(caught.value)


def test_constructor_validates_like_parse() -> None:
    with pytest.raises(ConfigError, match="sampling.mode: expected one of 'uniform', 'every'"):
        Sampling("random")
    with pytest.raises(ConfigError, match="sampling.frames: expected a whole number, got bool True"):
        Sampling("uniform", frames=True)


def test_uniform_times_are_slice_centres() -> None:
    assert uniform_times(4.0, 4) == [0.5, 1.5, 2.5, 3.5]


def test_pick_every_uses_index() -> None:
    assert list(pick_every(((i, i) for i in range(10)), 4)) == [0, 4, 8]


def test_pick_fps_takes_first_frame_at_or_after_each_tick() -> None:
    assert list(pick_fps(((i / 25, i) for i in range(30)), 10)) == [0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28]
    assert list(pick_fps(((t, i) for i, t in enumerate(VFR_TIMES)), 2)) == [0, 6, 7, 9]
    assert list(pick_fps(((i / 10, i) for i in range(5)), 100)) == [0, 1, 2, 3, 4]


def test_pick_shown_at_takes_frame_on_screen_once() -> None:
    items = [(t + 5.0, i) for i, t in enumerate(VFR_TIMES)]
    assert list(pick_shown_at(items, [0.0, 1.0, 5.31, 5.4, 100.0])) == [0, 4, 5, 9]


def test_pick_shown_at_stops_reading_after_last_target() -> None:
    read = []

    def frames():
        for i in range(1000):
            read.append(i)
            yield i / 10, i

    assert list(pick_shown_at(frames(), [0.25, 0.55])) == [2, 5]
    assert len(read) == 7


def test_select_uniform_takes_all_when_video_is_short() -> None:
    triples = [(i, i / 10, f"frame{i}") for i in range(5)]
    assert list(select(Sampling("uniform", frames=8), triples, 0.5, 5)) == triples
    chosen = select(Sampling("uniform", frames=2), triples, 0.5, 5)
    assert [index for index, _, _ in chosen] == [1, 3]


# --- sampling on real video ----------------------------------------------------------------------


def test_all_mode_decodes_every_frame_with_pts_times(cfr: Path) -> None:
    frames = frames_of(cfr, "all")
    assert indices(frames) == list(range(30))
    assert [frame.time for frame in frames] == pytest.approx([i / 10 for i in range(30)])
    for frame in frames:
        assert frame.source == str(cfr)
        assert frame.image.shape == (48, 64, 3)
        assert frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous


def test_every_mode(cfr: Path) -> None:
    assert indices(frames_of(cfr, "every:7")) == [0, 7, 14, 21, 28]


def test_fps_mode(cfr: Path) -> None:
    frames = frames_of(cfr, "fps:4")
    assert indices(frames) == [0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28]


def test_uniform_mode_spreads_over_duration(cfr: Path) -> None:
    frames = frames_of(cfr, "uniform:4")
    assert indices(frames) == [3, 11, 18, 26]
    assert [frame.time for frame in frames] == pytest.approx([0.3, 1.1, 1.8, 2.6])


def test_uniform_mode_takes_all_frames_of_short_video(cfr: Path) -> None:
    assert indices(frames_of(cfr, "uniform:50")) == list(range(30))


def test_uniform_mode_decodes_each_gop_once_up_to_its_target(gop10: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Targets 12, 37, 62, 87 need only GOPs 10, 30, 60 and 80, from the key frame to the target (plus the
    B-frame reorder depth of x264, 3 frames): each packet sent to the decoder once."""
    sent: list[int] = []
    real = VideoFile.decode_packet

    def spy(video: VideoFile, packet: av.Packet | None) -> list:
        if packet is not None:
            sent.append(packet.pts)
        return real(video, packet)

    monkeypatch.setattr(VideoFile, "decode_packet", spy)
    with av.open(str(gop10)) as container:
        time_base = container.streams.video[0].time_base
    stats = DecodeStats()
    frames = list(iter_frames(gop10, Sampling.parse("uniform:4"), stats))
    assert indices(frames) == [12, 37, 62, 87]
    numbers = [round(pts * time_base * 10) for pts in sent]
    assert len(numbers) == len(set(numbers))
    for target in (12, 37, 62, 87):
        gop = {n for n in numbers if n // 10 == target // 10}
        assert min(gop) == target // 10 * 10 and target in gop and max(gop) <= target + 3
    assert {n // 10 for n in numbers} == {1, 3, 6, 8}
    assert stats.sampled == 4 and stats.decoded <= len(numbers) and stats.warning() is None


def test_snapped_uniform_takes_the_nearest_key_frames_alone(gop10: Path) -> None:
    """Targets 1.25, 3.75, 6.25, 8.75 s; key frames every 1 s: nearest are 1, 4, 6 and 9 s, decoded alone."""
    stats = DecodeStats()
    frames = list(iter_frames(gop10, Sampling(mode="uniform", frames=4, snap="keyframes"), stats))
    assert indices(frames) == [10, 40, 60, 90]
    assert [frame.time for frame in frames] == pytest.approx([1.0, 4.0, 6.0, 9.0])
    assert stats.decoded == 4


def test_snap_applies_to_uniform_only() -> None:
    with pytest.raises(ConfigError, match="sampling.snap: applies to uniform sampling only, not 'every'"):
        Sampling(mode="every", every=2, snap="keyframes")
    with pytest.raises(ConfigError, match="sampling.snap: expected one of 'none' or 'keyframes'"):
        Sampling(snap="nearest")


def test_variable_frame_rate_times_come_from_pts(vfr: Path) -> None:
    frames = frames_of(vfr, "all")
    assert indices(frames) == list(range(10))
    assert [frame.time for frame in frames] == pytest.approx(VFR_TIMES, abs=1e-3)
    assert indices(frames_of(vfr, "fps:2")) == [0, 6, 7, 9]
    assert indices(frames_of(vfr, "uniform:4")) == [2, 5, 6, 8]


def test_keyframes_mode_decodes_only_key_frames(gop10: Path) -> None:
    frames = frames_of(gop10, "keyframes")
    assert indices(frames) == list(range(0, 100, 10))
    assert [frame.time for frame in frames] == pytest.approx([i for i in range(10)])


# --- formats and orientation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "size"),
    [
        ("odd_x264_444.mp4", "libx264", "yuv444p", (63, 47)),
        ("odd_ffv1.mkv", "ffv1", "yuv420p", (63, 47)),
        ("mpeg4.avi", "mpeg4", "yuv420p", (64, 48)),
        ("vp9.webm", "libvpx-vp9", "yuv420p", (64, 48)),
        ("mjpeg.mkv", "mjpeg", "yuvj420p", (80, 60)),
    ],
)
def test_codecs_containers_and_odd_sizes(
    tmp_path: Path, name: str, codec: str, pix_fmt: str, size: tuple[int, int]
) -> None:
    path = make_video(tmp_path / name, n_frames=12, size=size, fps=10, codec=codec, pix_fmt=pix_fmt)
    info = probe(path)
    assert (info.width, info.height, info.pix_fmt) == (size[0], size[1], pix_fmt)
    assert info.duration == pytest.approx(1.2)
    frames = frames_of(path, "all")
    assert indices(frames) == list(range(12))
    assert all(frame.image.shape == (size[1], size[0], 3) for frame in frames)
    assert indices(frames_of(path, "uniform:3")) == [2, 6, 10]


@pytest.mark.parametrize("name", ["stream.ts", "raw.h264"])
def test_start_offset_and_missing_header_duration(tmp_path: Path, name: str) -> None:
    """MPEG-TS starts at a non-zero pts; a raw H.264 stream has no duration, so uniform measures it from packets."""
    path = make_video(tmp_path / name, n_frames=30, fps=10)
    frames = frames_of(path, "all")
    assert indices(frames) == list(range(30))
    assert frames[0].time == 0.0
    assert indices(frames_of(path, "uniform:4")) == [3, 11, 18, 26]


def test_ten_bit_video_decodes_to_8_bit_rgb(tmp_path: Path) -> None:
    if "yuv420p10le" not in {fmt.name for fmt in av.codec.Codec("libx264", "w").video_formats}:
        pytest.skip("this libx264 build cannot encode yuv420p10le")
    path = make_video(tmp_path / "ten_bit.mp4", n_frames=8, pix_fmt="yuv420p10le")
    assert probe(path).pix_fmt == "yuv420p10le"
    frames = frames_of(path, "all")
    assert indices(frames) == list(range(8))
    assert frames[0].image.dtype == np.uint8


@pytest.mark.parametrize(
    ("rotation", "hflip", "degrees", "white", "gray"),
    [
        (90, False, 90, "bl", "tl"),
        (-90, False, -90, "tr", "br"),
        (180, False, 180, "br", "bl"),
        (90, True, 90, "tl", "bl"),
    ],
)
def test_display_matrix_is_applied(
    tmp_path: Path, rotation: int, hflip: bool, degrees: int, white: str, gray: str
) -> None:
    path = make_video(
        tmp_path / "rotated.mp4", n_frames=3, size=(96, 48), pattern=orientation_marks, rotation=rotation, hflip=hflip
    )
    info = probe(path)
    assert abs(info.rotation) == abs(degrees)
    swapped = abs(rotation) == 90
    assert (info.width, info.height) == ((48, 96) if swapped else (96, 48))
    for frame in frames_of(path, "all"):
        assert frame.image.shape == (info.height, info.width, 3)
        levels = corner_levels(frame.image)
        assert (levels[white], levels[gray]) == ("white", "gray")
        assert sorted(levels.values()) == ["black", "black", "gray", "white"]


def test_orient_matches_numpy_rotations() -> None:
    image = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    one = 1 << 16
    assert np.array_equal(orient(image, (0, -one, 0, one, 0, 0, 0, 0, 1 << 30)), np.rot90(image, 1))
    assert np.array_equal(orient(image, (0, one, 0, -one, 0, 0, 0, 0, 1 << 30)), np.rot90(image, -1))
    assert np.array_equal(orient(image, (-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30)), np.rot90(image, 2))
    assert orient(image, None) is image


# --- errors --------------------------------------------------------------------------------------


def expect_media_error(path: Path, problem: str) -> None:
    """Both ``probe`` and ``iter_frames`` fail with one line "<path>: ...problem..."."""
    for action in (probe, lambda p: list(iter_frames(p, Sampling("all")))):
        with pytest.raises(MediaError) as caught:
            action(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ")
        assert problem in message
        assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    expect_media_error(tmp_path / "nowhere.mp4", "no such file or directory")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    expect_media_error(path, "empty file (0 bytes)")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    expect_media_error(path, "not a media file")


def test_truncated_mp4_without_index(cfr: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(cfr.read_bytes()[: cfr.stat().st_size // 2])
    expect_media_error(path, "truncated or corrupt MP4/MOV file")


def test_truncated_mp4_with_index_first_yields_what_is_there(tmp_path: Path) -> None:
    full = make_video(tmp_path / "faststart.mp4", n_frames=30, gop=1, container_options={"movflags": "faststart"})
    path = tmp_path / "cut.mp4"
    path.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    frames = frames_of(path, "all")
    assert 0 < len(frames) < 30
    assert indices(frames) == list(range(len(frames)))


def test_audio_only_file(tmp_path: Path) -> None:
    expect_media_error(make_audio(tmp_path / "speech.m4a"), "no video stream")


def test_directory_passed_as_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.mp4"
    path.mkdir()
    expect_media_error(path, "is a directory")


def probe_as_nobody(path: Path) -> str:
    """Run ``probe`` in a forked child that dropped root to user ``nobody``; return its error message."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                probe(path)
                message = "no error"
            except MediaError as error:
                message = str(error)
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        return pipe.read()


def test_permission_denied(cfr: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        locked = Path(folder, "locked.mp4")
        locked.write_bytes(cfr.read_bytes())
        locked.chmod(0)
        if os.geteuid() == 0:
            assert probe_as_nobody(locked) == f"{locked}: permission denied"
        else:
            expect_media_error(locked, "permission denied")


def test_corrupt_packets_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = corrupt_packets(make_video(tmp_path / "damaged.mp4", n_frames=20, gop=1), [5, 12])
    with caplog.at_level(logging.WARNING, logger="streamdet.video.videofile"):
        frames = frames_of(path, "all")
    shown = [read_index(frame.image) for frame in frames]
    assert shown == [i for i in range(20) if i not in (5, 12)]
    assert [frame.time for frame in frames] == pytest.approx([i / 10 for i in shown])
    assert f"{path}: skipped 2 corrupt" in caplog.text


@pytest.mark.parametrize("workers", [1, 2])
def test_errors_inside_frames_are_counted_into_the_warning(tmp_path: Path, workers: int) -> None:
    """Two inter-coded frames overwritten from their middle on: the decoder conceals the damage and flags those
    two frames; every frame still comes out, and the warning says two were decoded with errors."""
    video = make_video(tmp_path / "overwritten.mp4", n_frames=30, size=(128, 96), gop=10)
    path = corrupt_packets(video, [5, 14], keep=0.5)
    stats = DecodeStats()
    frames = list(iter_frames(path, Sampling("all"), stats, workers=workers))
    assert len(frames) == 30 and stats.corrupt == 0
    assert stats.damaged == 2
    assert stats.warning() == "2 frame(s) decoded with errors"


def test_nothing_decodable_is_an_error(tmp_path: Path) -> None:
    path = corrupt_packets(make_video(tmp_path / "ruined.mp4", n_frames=6, gop=1), range(6))
    expect_media_error(path, "no decodable video frames (")


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "bmp", "tif", "tiff", "webp", "gif", "jpg", "jpeg"])
def test_image_formats_give_one_rgb_frame(tmp_path: Path, ext: str) -> None:
    image = index_bars(613, 80, 40)
    image[:, :, 0] = 200  # a red channel distinguishes RGB from BGR
    path = write_image(tmp_path / f"picture.{ext}", image)
    (frame,) = iter_frames(path)
    assert (frame.source, frame.index, frame.time) == (str(path), 0, 0.0)
    assert frame.image.shape == (40, 80, 3) and frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous
    assert read_index(frame.image) == 613
    assert abs(float(frame.image[..., 0].mean()) - 200) < 12
    assert probe(path).width == 80 and probe(path).height == 40


@pytest.mark.parametrize(
    ("orientation", "white", "gray", "shape"),
    [
        (1, "tl", "tr", (40, 80, 3)),
        (3, "br", "bl", (40, 80, 3)),
        (6, "tr", "br", (80, 40, 3)),
        (8, "bl", "tl", (80, 40, 3)),
    ],
)
def test_jpeg_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, white: str, gray: str, shape: tuple[int, int, int]
) -> None:
    path = write_jpeg_with_orientation(tmp_path / "photo.jpg", orientation_marks(0, 80, 40), orientation)
    (frame,) = iter_frames(path)
    assert frame.image.shape == shape
    levels = corner_levels(frame.image)
    assert (levels[white], levels[gray]) == ("white", "gray")


def test_sixteen_bit_png_is_scaled_to_8_bit(tmp_path: Path) -> None:
    image = np.full((30, 40, 3), 0x8000, np.uint16)
    image[:, :20] = 0xFFFF
    (frame,) = iter_frames(write_image(tmp_path / "deep.png", image))
    assert frame.image.dtype == np.uint8
    assert frame.image[0, 0].tolist() == [255, 255, 255] and frame.image[0, 39].tolist() == [128, 128, 128]


def test_gray_png_becomes_three_channels(tmp_path: Path) -> None:
    (frame,) = iter_frames(write_image(tmp_path / "gray.png", np.full((30, 40), 77, np.uint8)))
    assert frame.image.shape == (30, 40, 3)
    assert (frame.image == 77).all()


def test_alpha_channel_is_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0
    (frame,) = iter_frames(write_image(tmp_path / "clear.png", rgba))
    assert frame.image.shape == (30, 40, 3)
    assert frame.image[0, 0].tolist() == [200, 0, 0]


ANIMATION_DELAYS_MS = [100, 200, 100, 300, 100, 100, 50, 100]


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_animated_gif_and_webp_are_sampled_like_videos(tmp_path: Path, ext: str) -> None:
    """Each frame shown for its own delay: every rule picks by those times, as for a variable-frame-rate video."""
    path = write_animation(tmp_path / f"animated.{ext}", ANIMATION_DELAYS_MS)
    starts = [sum(ANIMATION_DELAYS_MS[:i]) / 1000 for i in range(len(ANIMATION_DELAYS_MS))]
    duration = sum(ANIMATION_DELAYS_MS) / 1000
    assert [item.kind for item in expand_inputs([tmp_path])] == ["video"]
    info = probe(path)
    assert (info.width, info.height, info.frames, info.duration) == (80, 40, 8, pytest.approx(duration))
    frames = frames_of(path, "all")
    assert indices(frames) == list(range(8))
    assert [frame.time for frame in frames] == pytest.approx(starts)
    for spec in ("uniform:3", "fps:4", "every:3"):
        assert indices(frames_of(path, spec)) == reference_pick(starts, [i == 0 for i in range(8)], duration, spec)
    assert indices(frames_of(path, "keyframes")) == [0]


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_a_one_frame_gif_or_webp_stays_an_image(tmp_path: Path, ext: str) -> None:
    path = write_animation(tmp_path / f"still.{ext}", [100])
    assert [item.kind for item in expand_inputs([path])] == ["image"]
    (frame,) = iter_frames(path, Sampling("all"))
    assert (frame.index, frame.time, read_index(frame.image)) == (0, 0.0, 0)


def test_video_named_as_an_image_is_decoded_as_the_video_it_is(cfr: Path, tmp_path: Path) -> None:
    """The content decides, not the extension: a video renamed .png is not scored on its first frame only."""
    path = tmp_path / "actually_a_video.png"
    path.write_bytes(cfr.read_bytes())
    frames = list(iter_frames(path, Sampling(mode="every", every=10)))
    assert [read_index(f.image) for f in frames] == [f.index for f in frames] == [0, 10, 20]


def test_broken_image_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff" + np.random.default_rng(2).bytes(500))
    expect_media_error(path, "not a readable image")


def test_probe_reports_video_facts(cfr: Path) -> None:
    assert probe(cfr) == VideoInfo(str(cfr), 64, 48, pytest.approx(3.0), 30, pytest.approx(10.0), 0, "h264", "yuv420p")


# --- input expansion -----------------------------------------------------------------------------


def test_expand_inputs_walks_folders_and_keeps_files(tmp_path: Path) -> None:
    root = tmp_path / "media"
    names = ["b.mp4", "a.JPG", "notes.txt", ".hidden.mp4", "sub/c.mkv", "sub/deeper/d.png", ".cache/e.mp4", "a2/f.webm"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes({".JPG": b"\xff\xd8\xff\xe0", ".png": b"\x89PNG\r\n\x1a\n"}.get(Path(name).suffix, b"x"))
    missing, empty, odd = tmp_path / "missing.mp4", tmp_path / "empty", tmp_path / "clip.weird"
    empty.mkdir()
    (empty / "readme.md").write_text("nothing")
    odd.write_bytes(b"x")

    inputs = expand_inputs([root, odd, str(root / "b.mp4"), missing, empty, "rtsp://cam/1", odd])

    assert [(i.path, i.kind, i.error) for i in inputs] == [
        (str(root / "a.JPG"), "image", None),
        (str(root / "a2" / "f.webm"), "video", None),
        (str(root / "b.mp4"), "video", None),
        (str(root / "sub" / "c.mkv"), "video", None),
        (str(root / "sub" / "deeper" / "d.png"), "image", None),
        (str(odd), "video", None),
        (str(missing), "error", f"{missing}: no such file or directory"),
        (str(empty), "error", f"{empty}: no image or video files found"),
        ("rtsp://cam/1", "video", None),
    ]


# --- exact frames against an independent reference decode ----------------------------------------
# The reference decodes every frame with plain PyAV and picks, with its own loops, the frames each rule
# names: the decoder under test must give the same indices, times and pixels whatever it skips or seeks.

EXACT_SPECS = ["all", "uniform:5", "uniform:16", "every:7", "fps:1.5", "keyframes"]


def reference_frames(path: Path) -> tuple[list[tuple[int, float, bool, np.ndarray]], float]:
    """Every frame as ``(index, time, key, rgb)`` in presentation order, and the header duration, by plain PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        frames = [
            (float((frame.pts - start) * stream.time_base), frame.key_frame, frame.to_ndarray(format="rgb24"))
            for frame in container.decode(stream)
        ]
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / av.time_base
    frames.sort(key=lambda item: item[0])
    return [(index, *item) for index, item in enumerate(frames)], duration


def exact_cases(root: Path) -> dict[str, Path]:
    """Files with B-frames (H.264, HEVC with open GOPs), variable frame rate and rotation, several GOPs each."""
    return {
        "bframes": make_video(root / "bframes.mp4", 90, fps=15, gop=12, options={"x264-params": "scenecut=0:bframes=3:b-pyramid=normal"}),
        "hevc": make_video(root / "hevc.mkv", 60, fps=12, codec="libx265", gop=16, options={"x265-params": "log-level=0:bframes=4:open-gop=1:keyint=16:min-keyint=16:scenecut=0"}),
        "vfr": make_video(root / "vfr_long.mp4", 40, times=[i * 0.05 + (i // 5) * 0.13 + (i % 3) * 0.01 for i in range(40)], gop=9),
        "rotated": make_video(root / "rotated.mov", 50, fps=10, gop=8, rotation=90),
        "ts": make_video(root / "gops.ts", 45, fps=15, gop=10),
    }


@pytest.fixture(scope="module")
def exact_media(media_dir: Path) -> dict[str, tuple[Path, list, float]]:
    """Each exact-frame case with its reference decode."""
    return {name: (path, *reference_frames(path)) for name, path in exact_cases(media_dir).items()}


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("case", ["bframes", "hevc", "vfr", "rotated", "ts"])
@pytest.mark.parametrize("spec", EXACT_SPECS)
def test_sampled_frames_equal_the_reference_decode(exact_media: dict, case: str, spec: str, workers: int) -> None:
    path, reference, duration = exact_media[case]
    expected = reference_pick([time for _, time, _, _ in reference], [key for _, _, key, _ in reference], duration, spec)
    stats = DecodeStats()
    frames = list(iter_frames(path, Sampling.parse(spec), stats, workers=workers))
    assert stats.warning() is None and stats.sampled == len(frames)
    assert stats.decoded <= len(reference), "no frame is decoded twice"
    assert [frame.index for frame in frames] == expected
    assert [frame.time for frame in frames] == pytest.approx([reference[i][1] for i in expected])
    for frame in frames:
        upright = np.rot90(reference[frame.index][3]) if case == "rotated" else reference[frame.index][3]
        assert np.array_equal(frame.image, upright), (case, spec, frame.index)


def test_parallel_chunks_buffer_their_targets_within_the_reorder_budget(tmp_path: Path) -> None:
    """A chunk waiting for its turn may hold all its targets, but never more than REORDER_BYTES of frames per file."""
    path = make_video(tmp_path / "hd.mp4", 2, (1920, 1080), 10)
    segment = lambda wanted: [Segment(0, wanted - 1, frozenset(range(wanted)))]  # noqa: E731
    rgb_frame = 1920 * 1080 * 3
    with VideoFile(str(path)) as video:
        assert chunks.reorder_depth(video, [segment(30), segment(20)], 2, planes=False) == 30
        assert chunks.reorder_depth(video, [segment(250)], 2, planes=False) == chunks.REORDER_BYTES // (2 * rgb_frame) == 43
        assert chunks.reorder_depth(video, [segment(250)], 16, planes=False) == 5
        assert chunks.reorder_depth(video, [segment(2)], 2, planes=False) == 4, "at least the old depth"


@pytest.mark.parametrize(("spec", "taken"), [("uniform:8", 8), ("uniform:50", 30), ("every:4", 8), ("fps:3", 9), ("all", 30)])
def test_each_modes_expected_count_is_what_decoding_takes(cfr: Path, spec: str, taken: int) -> None:
    """The mode table's count (the service's limit and the progress bar's total) against the frames decoded from
    a 30-frame, 3 s clip, and against the count worked out by hand (`taken`)."""
    from streamdet.video.sampling import expected_frames

    assert len(frames_of(cfr, spec)) == taken == expected_frames(Sampling.parse(spec), 30, 3.0)

