"""Freed 1080p frame buffers are reused instead of being mapped afresh (and page-faulted) for every frame."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from .media import make_video

# Decodes every frame while holding the previous one (as any batch does) and prints minor page faults per frame
# after the first ten.
_HOLD_AND_COUNT = """
import resource, sys
from streamdet.allocator import reuse_frame_buffers
from streamdet.video import Sampling, iter_frames
print(reuse_frame_buffers())
held = []
frames = iter_frames(sys.argv[1], Sampling(mode="all"))
for _ in range(10):  # the decoder's and the heap's first frames are new memory either way
    held[:] = held[-1:] + [next(frames)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
count = 0
for frame in frames:
    held[:] = [held[-1], frame]
    count += 1
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / count)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's mallopt settings")
def test_held_frames_do_not_page_fault_per_frame(tmp_path: Path) -> None:
    video = make_video(tmp_path / "hd.mp4", n_frames=30, size=(1920, 1080), fps=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _HOLD_AND_COUNT, str(video)], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    pages_per_frame = 1920 * 1080 * 3 / 4096
    assert applied == "True"
    assert float(faults) < pages_per_frame / 20, f"{faults} minor page faults per frame; a fresh 1080p RGB buffer is {pages_per_frame:.0f} pages"


def test_user_malloc_settings_are_left_alone() -> None:
    code = "from streamdet.allocator import reuse_frame_buffers; print(reuse_frame_buffers())"
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
