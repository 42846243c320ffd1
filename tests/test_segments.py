"""Suspicious segments: the rule on hand-made score series, then a spliced clip scanned by a student that sees the splice."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.detector import Detector
from streamdet.results import Segment
from streamdet.segments import find_segments, longest, sampling_step
from streamdet.video import Sampling

from .engines import configured, scan
from .media import make_video
from .traces import plant, quadrant_corner, texture, to_uint8

FPS, FRAMES = 10, 30


def series(scores: list[float | None], step: float = 0.5) -> list[tuple[float, float | None]]:
    return [(i * step, s) for i, s in enumerate(scores)]


def test_runs_above_the_threshold_are_segments_with_their_times_and_scores():
    points = series([0.1, 0.6, 0.8, 0.2, 0.1, 0.9, 0.1])
    assert find_segments(points) == [
        Segment("FAKE", 0.5, 1.0, 2, 0.8, 1.0, pytest.approx(0.7)),
        Segment("FAKE", 2.5, 2.5, 1, 0.9, 2.5, 0.9),
    ]
    assert find_segments(points, threshold=0.95) == []
    assert find_segments(series([0.5]))[0].frames == 1, "a score at the threshold is flagged"


def test_a_gap_shorter_than_the_setting_is_bridged_and_counted():
    points = series([0.7, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.7])  # runs at 0.0, 1.5 and 4.0 s
    assert [(s.start, s.end) for s in find_segments(points, gap_s=1.5)] == [(0.0, 0.0), (1.5, 1.5), (4.0, 4.0)], "a 1.5 s gap is not shorter than 1.5 s"
    merged = find_segments(points, gap_s=1.6)
    assert [(s.start, s.end, s.frames) for s in merged] == [(0.0, 1.5, 4), (4.0, 4.0, 1)]
    assert merged[0].mean == pytest.approx((0.7 + 0.1 + 0.1 + 0.7) / 4), "the bridged frames count in the mean"
    assert len(find_segments(points, gap_s=10)) == 1
    with pytest.raises(ValueError, match="segment gap -1"):
        find_segments(points, gap_s=-1)


def test_the_band_flags_from_low_and_calls_fake_from_high():
    points = series([0.1, 0.4, 0.5, 0.1, 0.4, 0.8, 0.4, 0.1])
    got = find_segments(points, band=(0.3, 0.7))
    assert [(s.kind, s.start, s.end, s.peak) for s in got] == [("UNCERTAIN", 0.5, 1.0, 0.5), ("FAKE", 2.0, 3.0, 0.8)]
    assert got[1].peak_time == 2.5


def test_unscored_frames_are_skipped_and_order_is_by_time():
    points = [(1.0, 0.9), (0.0, 0.1), (0.5, None), (1.5, 0.9), (2.0, 0.1)]
    assert [(s.start, s.end, s.frames) for s in find_segments(points)] == [(1.0, 1.5, 2)]
    assert sampling_step(t for t, _ in points) == 0.5 and sampling_step([3.0]) is None


def test_longest_prefers_duration_then_fake_then_the_earliest():
    a, b, c = Segment("UNCERTAIN", 0, 2, 5, 0.6, 1, 0.5), Segment("FAKE", 3, 5, 5, 0.9, 4, 0.8), Segment("FAKE", 6, 6.5, 2, 0.99, 6, 0.9)
    assert longest([a, b, c]) is b and longest([c]) is c and longest([]) is None
    assert longest([Segment("FAKE", 0, 1, 2, 0.9, 0, 0.9), Segment("FAKE", 2, 3, 2, 0.9, 2, 0.9)]).start == 0
    assert b.to_dict() == {"kind": "FAKE", "start": 3, "end": 5, "frames": 5, "peak": 0.9, "peak_time": 4, "mean": 0.8}


@pytest.mark.slow  # trains the trace student (shared with test_explain), about a minute on one core
@pytest.mark.training
@pytest.mark.usefixtures("one_torch_thread")
def test_a_spliced_clip_gives_one_segment_at_the_splice_points(tmp_path, tiny_config, tiny_adm_ckpt, trace_student_ckpt):
    """A 3 s clip (a panning texture, H.264) whose middle second carries the trace: the scan finds one FAKE segment, its
    start within a sampling step of the splice in (1.0 s) and its end within one of the splice out (2.0 s)."""
    spliced = range(FRAMES // 3, 2 * FRAMES // 3)

    def pattern(index: int, width: int, height: int) -> np.ndarray:
        image = texture(np.random.default_rng(5), height, width, shift=index)
        return plant(image, *quadrant_corner(index % 4, width)) if index in spliced else to_uint8(image)

    clip = make_video(tmp_path / "spliced.mp4", FRAMES, (64, 64), FPS, pattern=pattern)
    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=trace_student_ckpt))
    (result,) = scan(detector, [clip], sampling=Sampling(mode="all"))
    assert result.status == "ok" and len(result.frames) == FRAMES
    step = sampling_step(f.time for f in result.frames)
    assert step == pytest.approx(1 / FPS)
    (segment,) = find_segments([(f.time, f.score) for f in result.frames], threshold=0.5, gap_s=0.25)
    splice_in, splice_out = spliced[0] / FPS, (spliced[-1] + 1) / FPS
    assert segment.kind == "FAKE" and abs(segment.start - splice_in) <= step + 1e-9 and abs(segment.end - splice_out) <= step + 1e-9, (segment, splice_in, splice_out)
    inside = [f.score for f in result.frames if splice_in <= f.time < splice_out]
    assert segment.peak == max(inside) and segment.peak > 0.5
