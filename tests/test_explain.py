"""`streamdet.explain`: Grad-CAM of the student's last stage follows a planted trace; the frame/eps split and the overlays."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_grad_cam", reason="grad-cam (the `explain` extra) is not installed")

from streamdet.detector import Detector  # noqa: E402
from streamdet.explain import explain  # noqa: E402
from streamdet.report.overlay import KINDS, render, write  # noqa: E402

from .checkpoints import random_student, save_student  # noqa: E402
from .engines import configured  # noqa: E402
from .traces import SIDE, plant, quadrant_corner, texture, to_uint8  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quadrant_shares(heat: np.ndarray) -> list[float]:
    """The share of a map's mass in each quadrant: top left, top right, bottom left, bottom right."""
    half = heat.shape[0] // 2
    parts = [heat[:half, :half], heat[:half, half:], heat[half:, :half], heat[half:, half:]]
    return [float(p.sum() / heat.sum()) for p in parts]


@pytest.fixture(scope="module")
def detector(tiny_config, tiny_adm_ckpt, trace_student_ckpt) -> Detector:
    return Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=trace_student_ckpt))


@pytest.mark.slow  # trains the trace student (shared with test_segments), about a minute on one core
@pytest.mark.training
def test_the_heatmap_sits_on_the_trace_and_moves_with_it(detector):
    """Grad-CAM's mass is where the trace is: over 40% of it in the trace's quadrant and more than in any other, for each
    quadrant (a quarter would be chance; the 2×2 last stage of a 64² input, upsampled bilinearly, can put at most 77% in
    one quadrant). Measured when written: 45–66% in the trace's quadrant, at most 30% in any other."""
    base = texture(np.random.default_rng(7), 64, 64)
    images = [plant(base, *quadrant_corner(q, 64)) for q in range(4)] + [to_uint8(base)]
    x = detector.preprocess(np.stack(images))
    got = explain(detector, x)
    assert [e.score for e in got] == pytest.approx(detector.score(x).tolist(), abs=1e-4), "the scores of the ordinary path"
    assert all(e.score > 0.5 for e in got[:4]) and got[4].score < 0.5
    for quadrant, explanation in enumerate(got[:4]):
        shares = quadrant_shares(explanation.cam)
        assert shares[quadrant] > 0.4 and int(np.argmax(shares)) == quadrant, (quadrant, shares)
        assert explanation.cam.shape == (64, 64) and 0 <= explanation.cam.min() and explanation.cam.max() <= 1
        assert explanation.noise.shape == (64, 64, 3) and 0 <= explanation.eps_share <= 1


@pytest.mark.slow
@pytest.mark.training
def test_a_crop_box_maps_the_heatmap_back_to_frame_pixels(detector, tmp_path):
    """A 128×64 frame scored as three cover crops, the trace in the right one's bottom right quadrant: its peak and the
    overlay's heat land on the trace in frame pixels."""
    frame = np.concatenate([to_uint8(texture(np.random.default_rng(8), 64, 64)), to_uint8(texture(np.random.default_rng(9), 64, 64))], axis=1)
    tx, ty = 64 + quadrant_corner(3, 64)[0], quadrant_corner(3, 64)[1]
    frame = plant(frame, tx, ty)
    x, layout = detector.preprocess_crops([frame], "cover")
    boxes = layout[0][1]
    assert boxes == [(0, 0, 64, 64), (32, 0, 64, 64), (64, 0, 64, 64)]
    left, _, right = explain(detector, x, boxes)
    assert right.score > 0.5 > left.score, "only the left square misses the trace"
    px, py = right.peak()
    assert 96 <= px < 128 and 32 <= py < 64, "the peak, in frame pixels, is in the trace's quadrant"
    assert right.to_dict() == {"score": right.score, "eps_share": round(right.eps_share, 4), "box": [64, 0, 64, 64], "peak": [px, py]}

    pngs = render(frame, right)
    assert list(pngs) == list(KINDS)
    images = {k: cv2.cvtColor(cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for k, v in pngs.items()}
    assert images["cam"].shape == frame.shape and images["eps"].shape == (64, 64, 3)
    heat = images["cam"].astype(int)
    redness = heat[..., 0] - heat[..., 2]  # the jet colour map runs from blue (0) to red (1)
    assert redness[ty : ty + SIDE, tx : tx + SIDE].mean() > redness[8:24, 72:88].mean() + 50, "hot on the trace, cold in the box's far corner"
    assert np.abs(heat[10:50, 10:50] - (frame[10:50, 10:50] * 0.45).astype(int)).max() <= 1, "outside the box the frame is dimmed, not painted"
    small = render(frame, right, max_side=64)
    assert cv2.imdecode(np.frombuffer(small["cam"], np.uint8), cv2.IMREAD_COLOR).shape == (32, 64, 3)
    written = write(tmp_path / "explain", "clip.mp4.f0", pngs)
    assert [p.name for p in written] == [f"clip.mp4.f0.{k}.png" for k in KINDS] and all(p.read_bytes() == pngs[k] for p, k in zip(written, KINDS))


def test_the_split_follows_what_the_student_reads(tiny_config, tiny_adm_ckpt, ckpt_dir):
    """A student whose first layer ignores eps gets no eps share at all, and one that ignores the frame gets all of it."""
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for blind, expected in ((slice(3, 6), 0.0), (slice(0, 3), 1.0)):
        student = random_student(seed=6)
        with torch.no_grad():
            student.student_backbone.conv1.weight[:, blind] = 0
        path = save_student(ckpt_dir / f"blind-{expected}.pth", student)
        got = explain(Detector.load(configured(tiny_config, adm=tiny_adm_ckpt, student=path)), x)
        assert [e.eps_share for e in got] == [expected, expected]
        unread = "eps" if expected == 0 else "frame"
        assert all(not getattr(e, unread).any() for e in got), f"the {unread} map is empty"
