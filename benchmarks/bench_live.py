"""Benchmark `streamdet watch`: N simultaneous live streams sharing one detector.

For each stream count, runs a watch for a fixed time and prints, per stream count: analysed frames/s per
stream (against the target `--fps`), the mean batch size (frames of several streams share model calls),
latency from frame arrival to score (p50 / p95 over the last 30 s), and the drop rate (picked frames
replaced by a newer one before the model got to them). Random weights in the config's architecture.

    python benchmarks/bench_live.py --config tiny --streams 1,2,4,8             # CPU; local clips, --realtime
    python benchmarks/bench_live.py --config tiny --source rtsp                  # through the GStreamer RTSP server
    python benchmarks/bench_live.py --config default --streams 16,64,128,256     # GPU, full-size models
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from bench_scan import make_clip, random_detector

from streamdet.config import load_config, with_overrides
from streamdet.live import AlertRule, EventLog, SourceSettings, StreamTarget, Watch, WatchSettings
from streamdet.live.window import default_min_frames

RTSP_SERVER = Path(__file__).resolve().parent.parent / "tests" / "rtsp_server.py"


def start_rtsp(n: int, fps: int, size: str) -> tuple[subprocess.Popen, list[str]]:
    """The GStreamer test RTSP server (tests/rtsp_server.py, Debian's python3) with `n` mount points."""
    args = ["/usr/bin/python3", str(RTSP_SERVER), "--port", "0", "--fps", str(fps), "--size", size]
    for i in range(n):
        args += ["--path", f"/s{i}"]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if not line.startswith("READY"):
        server.kill()
        sys.exit(f"bench_live: the RTSP test server did not start ({RTSP_SERVER})")
    port = int(line.split()[1])
    return server, [f"rtsp://127.0.0.1:{port}/s{i}" for i in range(n)]


def run(detector, urls: list[str], kind: str, seconds: float, fps: float) -> dict:
    """One watch over `urls` for `seconds`; the per-stream figures averaged, plus the mean batch size."""
    targets = [StreamTarget(f"s{i}", url, kind) for i, url in enumerate(urls)]
    window = 10.0
    rule = AlertRule(window_s=window, min_frames=default_min_frames(window, fps))
    settings = WatchSettings(SourceSettings(fps=fps, realtime=kind == "file"), rule, status_every_s=3600, duration_s=seconds)
    watch = Watch(detector, targets, settings, EventLog(io.StringIO()))
    watch.run()
    snaps = [watch.health[t.id].snapshot() for t in targets]
    latencies50 = [s["latency_p50_ms"] for s in snaps if s["latency_p50_ms"] is not None]
    latencies95 = [s["latency_p95_ms"] for s in snaps if s["latency_p95_ms"] is not None]
    picked = sum(s["analysed"] + s["dropped"] for s in snaps)
    return {
        "fps_mean": sum(s["analysed_fps"] for s in snaps) / len(snaps),
        "fps_min": min(s["analysed_fps"] for s in snaps),
        "batch": sum(s["analysed"] for s in snaps) / max(1, watch.model_calls),
        "p50": max(latencies50) if latencies50 else float("nan"),
        "p95": max(latencies95) if latencies95 else float("nan"),
        "drop": sum(s["dropped"] for s in snaps) / picked if picked else 0.0,
        "reconnects": sum(s["reconnects"] for s in snaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--streams", default="1,2,4,8", help="comma-separated stream counts")
    parser.add_argument("--fps", type=float, default=2.0, help="analysis rate per stream")
    parser.add_argument("--seconds", type=float, default=40.0, help="watch time per stream count (rates use the last 30 s)")
    parser.add_argument("--source", choices=("file", "rtsp"), default="file", help="local clips with --realtime, or the RTSP test server")
    parser.add_argument("--size", default="640x360", help="stream resolution WxH")
    parser.add_argument("--stream-fps", type=int, default=25, help="frame rate of the streams")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    detector = random_detector(config)
    width, height = (int(v) for v in args.size.split("x"))
    counts = [int(n) for n in args.streams.split(",")]
    print(f"# bench_live: config {config.source}, device {detector.device}, precision {detector.precision}, batch {detector.batch.size}, "
          f"torch threads {torch.get_num_threads()}, {args.source} streams {args.size} at {args.stream_fps} fps, analysed at {args.fps} fps, "
          f"{args.seconds:g} s per row")
    print("| streams | analysed fps / stream (mean, min) | mean batch | latency p50 ms | latency p95 ms | drop rate |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        clip = None
        if args.source == "file":
            frames = int((args.seconds + 5) * args.stream_fps)
            clip = make_clip(Path(tmp) / "clip.mp4", frames, width, height, fps=args.stream_fps)
        for n in counts:
            server = None
            if args.source == "rtsp":
                server, urls = start_rtsp(n, args.stream_fps, args.size)
                kind = "network"
            else:
                urls, kind = [str(clip)] * n, "file"
            try:
                r = run(detector, urls, kind, args.seconds, args.fps)
            finally:
                if server is not None:
                    server.terminate()
                    server.wait(10)
            note = f" ({r['reconnects']} reconnects)" if r["reconnects"] else ""
            print(f"| {n} | {r['fps_mean']:.2f}, {r['fps_min']:.2f} | {r['batch']:.2f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['drop']:.1%}{note} |", flush=True)


if __name__ == "__main__":
    main()
