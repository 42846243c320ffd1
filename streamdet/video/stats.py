"""What decoding one file actually did, so a partial read is reported instead of passing as a whole file."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# Packets may end this much (seconds, or two frames if longer) before the header's duration without the
# file counting as cut short: containers round durations and the last frame's display time.
END_SLACK_S = 0.1


@dataclass
class DecodeStats:
    """Counts filled in while a file is decoded: packets the decoder rejected, where reading stopped, frames out.

    ``stopped_at`` is the time (s) of the last packet read when reading ended before ``duration`` (a read error
    or a file cut short); ``missing`` counts sampled frames that were planned but never came out of the decoder;
    ``damaged`` counts frames the decoder output with errors in them (FFmpeg's "error while decoding MB", the
    broken part concealed from neighbouring pixels).
    """

    corrupt: int = 0
    decoded: int = 0
    sampled: int = 0
    missing: int = 0
    damaged: int = 0
    stopped_at: float | None = None
    duration: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, corrupt: int, decoded: int, missing: int, damaged: int) -> None:
        """Add one decoder's counts (parallel decoders of one file report from their own threads)."""
        with self._lock:
            self.corrupt += corrupt
            self.decoded += decoded
            self.missing += missing
            self.damaged += damaged

    def note_end(self, last_time: float | None, duration: float | None, fps: float | None, read_error: bool) -> None:
        """Record where the packets ended: a read error, or an end well before the header's duration, is a stop."""
        self.duration = duration
        if last_time is None:
            return
        slack = max(END_SLACK_S, 2 / fps) if fps else END_SLACK_S
        if read_error or (duration is not None and last_time < duration - slack):
            self.stopped_at = last_time

    def warning(self) -> str | None:
        """One line on what was lost (an early stop, corrupt packets, damaged frames, frames missing), or None if nothing."""
        parts = []
        if self.stopped_at is not None:
            whole = f" of {self.duration:.1f} s" if self.duration is not None else ""
            parts.append(f"decoding stopped at t={self.stopped_at:.1f} s{whole} (file cut short or unreadable)")
        if self.corrupt:
            parts.append(f"{self.corrupt} corrupt packet(s) skipped")
        if self.damaged:
            parts.append(f"{self.damaged} frame(s) decoded with errors")
        if self.missing:
            parts.append(f"{self.missing} sampled frame(s) could not be decoded")
        return "; ".join(parts) or None
