"""What `watch` is pointed at: network URLs, capture devices and local files, named and checked up front."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Literal, Sequence
from urllib.parse import urlsplit

from streamdet.errors import ConfigError
from streamdet.video.sources import is_url

Kind = Literal["network", "device", "file"]

_RTSP_SCHEMES = ("rtsp", "rtsps")
# Schemes whose address must name a host to connect to (udp://, srt:// and others may listen on any).
_CLIENT_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps")
_CREDENTIALS = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@]*?):([^/@]*)@")


@dataclass(frozen=True)
class StreamTarget:
    """One live input: its display id (credentials masked), the address to open, and what kind of input it is."""

    id: str
    url: str
    kind: Kind

    @property
    def scheme(self) -> str:
        """The URL scheme in lower case (`rtsp`, `http`, …); empty for devices and files."""
        return urlsplit(self.url).scheme.lower() if self.kind == "network" else ""


def redact(url: str) -> str:
    """The URL with any password replaced by `***`, so ids, events and metrics never leak credentials."""
    return _CREDENTIALS.sub(r"\1\2:***@", url)


def classify(target: str) -> Kind:
    """`network` for URLs, `device` for capture devices under /dev, `file` for anything else."""
    if is_url(target):
        return "network"
    if target.startswith("/dev/"):
        return "device"
    return "file"


def parse_targets(targets: Sequence[str], realtime: bool) -> list[StreamTarget]:
    """Check the inputs of `watch` and name them; a bad one is a one-line `ConfigError` naming it."""
    if not targets:
        raise ConfigError("watch: give at least one stream URL, capture device or (with --realtime) video file")
    parsed: list[StreamTarget] = []
    seen: set[str] = set()
    for target in targets:
        kind = classify(target)
        if kind == "file":
            _check_file(target, realtime)
        if kind == "network":
            _check_address(target)
        if kind == "device" and os.path.exists(target) and not stat.S_ISCHR(os.stat(target).st_mode):
            raise ConfigError(f"{target}: not a capture device (a character device such as /dev/video0)")
        name = redact(target)
        if name in seen:
            raise ConfigError(f"{name}: given twice")
        seen.add(name)
        parsed.append(StreamTarget(name, target, kind))
    return parsed


def _check_address(url: str) -> None:
    """A stream URL must be well formed: a port, where a colon asks for one, is a number from 1 to 65535, and a client
    scheme names a host (FFmpeg refuses such an address as an invalid argument, or dials nowhere, every retry)."""
    name = redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{name}: malformed address ({exc})") from None
    if parts.netloc.endswith(":") or port == 0:
        raise ConfigError(f"{name}: malformed address (no port number after the colon)" if port is None else f"{name}: malformed address (port 0)")
    if parts.scheme.lower() in _CLIENT_SCHEMES and not parts.hostname:
        raise ConfigError(f"{name}: malformed address (no host name)")


def _check_file(path: str, realtime: bool) -> None:
    """A local video must exist, be a readable file, and be played with --realtime."""
    if not os.path.exists(path):
        raise ConfigError(f"{path}: no such file or directory")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: not a file (give a stream URL, a capture device or a video file)")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{path}: permission denied")
    if not realtime:
        raise ConfigError(f"{path}: a local file is not live; add --realtime to play it at its own speed, or use `streamdet scan`")


def open_options(target: StreamTarget, rtsp_transport: str, timeout_s: float, analyze_s: float = 1.0) -> dict[str, str]:
    """FFmpeg options for opening a live input: transport and socket timeouts in microseconds, short probing.

    With PyAV 18 (FFmpeg 8) the RTSP demuxer takes its socket timeout as `timeout` (`stimeout` no longer
    exists and `rw_timeout` is ignored by it); HTTP, HLS and RTMP honour the generic `rw_timeout` (for RTMP,
    `timeout` would mean "listen for an incoming connection").
    """
    if target.kind == "file":
        return {}
    micros = str(round(timeout_s * 1_000_000))
    options = {"analyzeduration": str(round(analyze_s * 1_000_000))}
    if target.scheme in _RTSP_SCHEMES:
        options.update(rtsp_transport=rtsp_transport, timeout=micros)
    elif target.kind == "network":
        options["rw_timeout"] = micros
    return options
