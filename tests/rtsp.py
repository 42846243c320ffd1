"""Start, stop, pause and restart the real GStreamer RTSP server (tests/rtsp_server.py) from the tests."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("rtsp_server.py")
_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay') if Gst.ElementFactory.find(e) is None];"
    "print(' '.join(missing))"
)
APT_PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"


def unavailable() -> str | None:
    """Why the RTSP server cannot run here (None if it can)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found (the GStreamer RTSP test server runs with Debian's Python)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"GStreamer RTSP server bindings unavailable ({last}); apt-get install {APT_PACKAGES}"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()}; apt-get install {APT_PACKAGES}"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """The test RTSP server on a fixed port, serving a live 160×120 H.264 test pattern at `fps` (`silent`: no video packets)."""

    def __init__(self, port: int | None = None, paths: tuple[str, ...] = ("/test",), fps: int = 10, silent: bool = False) -> None:
        self.port = port or free_port()
        self.paths = paths
        self.fps = fps
        self.silent = silent
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "/test") -> str:
        """The rtsp:// URL of a mount point."""
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 30.0) -> "RtspServer":
        """Start the server and wait until it listens; RuntimeError with its stderr if it does not."""
        args = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(self.port), "--fps", str(self.fps)]
        for path in self.paths:
            args += ["--path", path]
        if self.silent:
            args.append("--silent")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("READY"):
                    return self
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"RTSP test server did not start: {self.process.stderr.read() if self.process.stderr else ''}")

    def kill(self) -> None:
        """SIGKILL: the connection drops as when a camera or server dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but no data flows (a stalled socket)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
