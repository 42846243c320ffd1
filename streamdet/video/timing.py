"""Frame times as FFmpeg's players take them: the best-effort timestamp, kept increasing where FFmpeg's is not."""

from __future__ import annotations

from fractions import Fraction

import av


class BestEffort:
    """Times in seconds for the frames a decoder outputs, in output order, by FFmpeg's best-effort rule.

    FFmpeg (``guess_correct_pts``) takes each frame's pts until pts have gone backwards more often than the
    decode timestamps (dts) have, then the dts. With ``ignore_pts``, for streams whose pts are known to be wrong
    (packed B-frames, pts in decode order), the dts alone, where FFmpeg ends up after their first fault.
    A time that is missing or not after the previous frame's (FFmpeg's at the decoder's drain, or on streams
    without timestamps) is the previous frame's plus one frame duration, so times always increase.
    """

    def __init__(self, start: int, time_base: Fraction, rate: float | None, ignore_pts: bool = False) -> None:
        self.start = start
        self.time_base = time_base
        self.step = 1 / rate if rate else 0.0
        self.ignore_pts = ignore_pts
        self.faulty_pts = 0
        self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.previous: float | None = None

    def time(self, frame: av.VideoFrame) -> float:
        """The next output frame's time in seconds from the stream start."""
        pts, dts = None if self.ignore_pts else frame.pts, frame.dts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        chosen = pts if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None) else dts
        time = float((chosen - self.start) * self.time_base) if chosen is not None else None
        if self.previous is not None and (time is None or time <= self.previous):
            duration = float(frame.duration * self.time_base) if frame.duration else 0.0
            time = self.previous + (duration or self.step)
        self.previous = time if time is not None else 0.0
        return self.previous
