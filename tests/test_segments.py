"""Suspicious segments: the rule on hand-made score series, then a spliced clip scanned by a student that sees the splice."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.detector import Detector
from streamdet.live.window import AlertRule, AlertWindow
from streamdet.results import Segment
from streamdet.segments import SegmentTracker, find_segments, longest, sampling_step
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


def test_the_tracker_fed_point_by_point_closes_segments_as_soon_as_nothing_can_join():
    tracker = SegmentTracker(0.5, gap_s=1.0, keep=1)
    for time, score in series([0.9, 0.9, 0.1, 0.9, 0.1, 0.1]):  # runs at 0.0-0.5 s and 1.5 s: 1.0 s apart is not shorter than the gap
        tracker.add(time, score)
    assert [(s.start, s.end) for s in tracker.closed] == [(1.5, 1.5)] and tracker.open is None, "only the last closed segment is kept"
    assert tracker.latest() == find_segments(series([0.9, 0.9, 0.1, 0.9, 0.1, 0.1]), gap_s=1.0)[-1]


def test_watch_alerts_carry_their_segment():
    """A live window: three calm frames, five suspicious, six calm (0.5 s apart). The raised alert carries the segment under
    way (from the first suspicious frame), the cleared one the whole segment."""
    window = AlertWindow(AlertRule(window_s=2.0, raise_at=0.5, clear_at=0.3, min_frames=2))
    changes = [window.add(t, s) for t, s in series([0.1] * 3 + [0.9] * 5 + [0.1] * 6)]
    raised, cleared = [c for c in changes if c is not None]
    assert raised.kind == "raised" and (raised.segment.start, raised.segment.kind) == (1.5, "FAKE") and raised.segment.end <= 3.5
    assert cleared.kind == "cleared" and (cleared.segment.start, cleared.segment.end, cleared.segment.frames) == (1.5, 3.5, 5)


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


@pytest.mark.slow
def test_a_watch_alert_event_carries_its_segment(tiny_config, tiny_adm_ckpt, fake_student_ckpt):
    """Through the real Watch: every frame of the fake student is flagged, so the alert raised at the second frame
    (min_frames 2, frames 0.5 s apart) carries the segment from the first frame to it."""
    from .test_verdicts import FAKE_P, _watch

    detector = Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=fake_student_ckpt))
    events = _watch(detector, AlertRule(window_s=10, raise_at=0.9, clear_at=0.5, min_frames=2))
    (raised,) = [e for e in events if e["event"] == "alert_raised"]
    assert raised["segment"] == {"kind": "FAKE", "start": 0.0, "end": 0.5, "frames": 2, "peak": pytest.approx(FAKE_P, abs=1e-4),
                                 "peak_time": 0.0, "mean": pytest.approx(FAKE_P, abs=1e-4)}
