"""Media input: find inputs, probe them and decode the sampled frames as RGB ``Frame``s."""

from __future__ import annotations

from streamdet.video.decode import VideoInfo, iter_frames, probe
from streamdet.video.frame import Frame, YuvImage
from streamdet.video.sampling import Sampling
from streamdet.video.sources import Input, expand_inputs
from streamdet.video.stats import DecodeStats

__all__ = ["DecodeStats", "Frame", "Input", "Sampling", "VideoInfo", "YuvImage", "expand_inputs", "iter_frames", "probe"]
