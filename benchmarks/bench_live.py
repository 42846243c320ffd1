"""Benchmark `streamdet watch`: N simultaneous live streams sharing one engine (one detector).

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_scan import make_clip, random_weights  # noqa: E402
from streamdet.config import Config, load_config, with_overrides  # noqa: E402
from streamdet.engine import Engine  # noqa: E402
from streamdet.live import EventLog, StreamTarget, Watch, WatchSettings  # noqa: E402

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


def run(engine: Engine, urls: list[str], kind: str, seconds: float, fps: float) -> dict:
    """One watch over `urls` for `seconds` (the engine's `watch:` settings, with `fps`, realtime reading of local
    files and no status lines); the per-stream figures averaged, plus the mean batch size."""
    targets = [StreamTarget(f"s{i}", url, kind) for i, url in enumerate(urls)]
    changes = {"watch.fps": fps, "watch.realtime": kind == "file", "watch.status_every": 3600.0, "watch.duration": seconds}
    settings = WatchSettings.from_config(with_overrides(engine.settings, changes))
    watch = Watch(engine, targets, settings, EventLog(io.StringIO()))
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

    config: Config = with_overrides(load_config(args.config), device=args.device, precision=args.precision, batch=args.batch)
    width, height = (int(v) for v in args.size.split("x"))
    counts = [int(n) for n in args.streams.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.load(random_weights(config, Path(tmp)))
        detector = engine.scorer
        print(f"# bench_live: config {config.source}, device {detector.device}, precision {detector.precision}, batch {detector.batch.size}, "
              f"torch threads {torch.get_num_threads()}, {args.source} streams {args.size} at {args.stream_fps} fps, analysed at {args.fps} fps, "
              f"{args.seconds:g} s per row")
        print("| streams | analysed fps / stream (mean, min) | mean batch | latency p50 ms | latency p95 ms | drop rate |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
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
                r = run(engine, urls, kind, args.seconds, args.fps)
            finally:
                if server is not None:
                    server.terminate()
                    server.wait(10)
            note = f" ({r['reconnects']} reconnects)" if r["reconnects"] else ""
            print(f"| {n} | {r['fps_mean']:.2f}, {r['fps_min']:.2f} | {r['batch']:.2f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['drop']:.1%}{note} |", flush=True)


if __name__ == "__main__":
    main()
