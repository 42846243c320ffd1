"""A real HTTP server for tests that need an input which cannot finish until the test lets it."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import Iterator
from contextlib import contextmanager


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Serves the server's clip: a byte every 0.2 s while it is held (hours for a clip), the rest at once when released."""

    def do_GET(self) -> None:
        clip, held = self.server.clip, self.server.held  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(clip)))
        self.end_headers()
        sent = 0
        try:
            while held.is_set() and sent < len(clip):
                self.wfile.write(clip[sent : sent + 1])
                self.wfile.flush()
                sent += 1
                time.sleep(0.2)  # the server's pace, not a wait of the test
            self.wfile.write(clip[sent:])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


class Trickle:
    """The running server: `url` serves the clip, held back until `release()`."""

    def __init__(self, server: http.server.ThreadingHTTPServer, name: str) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/{name}"

    def release(self) -> None:
        self.server.held.clear()  # type: ignore[attr-defined]


@contextmanager
def trickle(clip: Path) -> Iterator[Trickle]:
    """Serve `clip` (an MPEG-TS file, readable as it arrives) on a free loopback port, held until released."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    server.clip = clip.read_bytes()  # type: ignore[attr-defined]
    server.held = threading.Event()  # type: ignore[attr-defined]
    server.held.set()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Trickle(server, clip.name)
    finally:
        server.held.clear()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
