"""A real RTSP server for the live tests: GStreamer's RTSP server streaming a live test pattern as H.264.

Run with a Python that has the GStreamer GObject bindings (Debian's /usr/bin/python3 with python3-gi,
gir1.2-gst-rtsp-server-1.0 and the x264enc plugin), not the project venv:

    /usr/bin/python3 tests/rtsp_server.py --port 0 --fps 10 --size 160x120

It serves rtsp://127.0.0.1:PORT/test (or each ``--path`` given; TCP and UDP transports), prints
``READY <port>`` on stdout once it listens, and runs until killed.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(fps: int, width: int, height: int, silent: bool = False) -> str:
    """A live moving test pattern, H.264 with a key frame every second, RTP-payloaded.

    `silent`: the stream is described and set up as usual, but every encoded buffer is dropped before the
    payloader, so a client connects and then never receives a video packet.
    """
    drop = "! identity drop-probability=1.0 " if silent else ""
    return (
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=300 "
        f"{drop}! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> int:
    """Serve until SIGTERM/SIGINT; exit 1 with a message if the port cannot be bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", action="append", help="mount point (repeatable; default /test)")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--silent", action="store_true", help="answer and set up the stream, but send no video")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args.fps, width, height, args.silent))
    factory.set_shared(True)
    for path in args.path or ["/test"]:
        server.get_mount_points().add_factory(path, factory)
    try:
        if server.attach(None) == 0:
            raise GLib.Error("attach failed")
    except GLib.Error as exc:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port} ({exc})", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
