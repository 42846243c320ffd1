"""Benchmark `streamdet serve` with N concurrent clients against a one-request-one-forward server, side by side.

Both servers are real processes on loopback with the same config and random weights in the official formats,
and both are sent the same small images, one per request, by N client threads (httpx), each sending its next
request when its last one is answered:

- `streamdet serve`: `POST /v1/scans?wait=60` (the frames of concurrent jobs share model calls);
- the reference way (the DistilDIRE reference serves one image per request): a FastAPI app in this file that
  decodes the upload, runs one forward of its frames under a lock (one model, one request at a time, as a
  threaded Flask or Gradio app around one model does) and answers with the verdict.

Prints a markdown table per client count: requests/s, latency p50/p95 (request sent → verdict received) and
frames per model call (`streamdet serve`: from its /metrics; the reference: the frames of one request).

    python benchmarks/bench_serve.py --config tiny --clients 1,8,32 --requests 48     # CPU, about two minutes
    python benchmarks/bench_serve.py --config default --clients 1,8,32 --requests 256  # GPU, full-size models
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from fastapi import FastAPI, UploadFile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamdet.config import load_config  # noqa: E402
from tests.checkpoints import random_student, save_adm, save_student  # noqa: E402
from tests.media import write_image  # noqa: E402
from tests.serve_process import ServeProcess  # noqa: E402


def reference_server(config: str, adm: str, student: str, port_file: str) -> None:
    """One request, one forward: decode the upload, score its frames in one model call, answer (run in a child process)."""
    import os
    import shutil
    import socket

    import uvicorn

    from streamdet.engine import Engine
    from streamdet.video import iter_frames

    settings = load_config(config, {"weights.adm": adm, "weights.student": student})
    engine = Engine.load(settings)
    lock = threading.Lock()
    app = FastAPI()
    calls = {"calls": 0, "frames": 0}

    @app.post("/predict")
    def predict(file: UploadFile) -> dict:
        with tempfile.NamedTemporaryFile(suffix=Path(file.filename or "x.png").suffix) as tmp:
            shutil.copyfileobj(file.file, tmp)
            tmp.flush()
            frames = list(iter_frames(tmp.name, settings.sampling))
        from streamdet.results import FileResult

        with lock:
            scores = engine.score_frames(frames)
            calls["calls"] += 1
            calls["frames"] += len(frames)
        result = engine.conclude(FileResult(file.filename or "upload", "image", frames=scores))
        return {"verdict": result.verdict, "score": result.score}

    @app.get("/calls")
    def stats() -> dict:
        return calls

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    Path(port_file).write_text(str(sock.getsockname()[1]))
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def metric(text: str, name: str) -> float:
    """A counter's value in Prometheus text."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def load(url: str, path: str, files: list[Path], clients: int, requests: int, field: str = "file", params: dict | None = None) -> dict:
    """`requests` uploads from `clients` threads (each waits for its answer before the next); rate and latencies."""
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client(_: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                image = files[n % len(files)]
                start = time.perf_counter()
                answer = http.post(path, files={field: (image.name, image.read_bytes())}, params=params)
                answer.raise_for_status()
                if "status" in answer.json():
                    assert answer.json()["status"] == "done", answer.text
                with lock:
                    latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"rate": requests / elapsed, "p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--clients", default="1,8,32", help="Client counts, comma-separated.")
    parser.add_argument("--requests", type=int, default=48, help="Requests per client count and server.")
    parser.add_argument("--size", default="320x240", help="Image size WxH.")
    parser.add_argument("--reference-server", nargs=4, metavar=("CONFIG", "ADM", "STUDENT", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_server:
        reference_server(*args.reference_server)
        return
    import subprocess

    import httpx

    width, height = (int(v) for v in args.size.split("x"))
    counts = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = load_config(args.config)
        adm = save_adm(folder / "adm.pt", cfg.adm)
        student = save_student(folder / "student.pth", random_student(seed=1))
        files = [write_image(folder / f"i{i}.png", np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)) for i in range(16)]
        data = yaml.safe_load(Path(cfg.source).read_text()) if cfg.source != "<defaults>" else {}
        most = 4 * max(counts)
        data["serve"] = {"spool": str(folder / "spool"), "queue_size": most, "jobs_per_token": most}
        config = folder / "bench.yaml"
        config.write_text(yaml.safe_dump(data))
        port_file = folder / "reference.port"
        reference = subprocess.Popen([sys.executable, __file__, "--reference-server", str(config), str(adm), str(student), str(port_file)])
        rows = []
        try:
            with ServeProcess(["--config", str(config), "--adm", str(adm), "--student", str(student)], env={"STREAMDET_HOME": str(folder / "home")}) as served:
                served.wait_ready()
                while not port_file.is_file() or not port_file.read_text():
                    if reference.poll() is not None:
                        sys.exit("bench_serve: the reference server did not start")
                    time.sleep(0.2)
                ref_url = f"http://127.0.0.1:{port_file.read_text()}"
                while True:
                    try:
                        httpx.get(ref_url + "/calls", timeout=5)
                        break
                    except httpx.TransportError:
                        time.sleep(0.2)
                load(served.url, "/v1/scans", files, 1, 2, params={"wait": 60})  # warm both up
                load(ref_url, "/predict", files, 1, 2)
                for n in counts:
                    before = httpx.get(served.url + "/metrics").text
                    ours = load(served.url, "/v1/scans", files, n, args.requests, params={"wait": 60})
                    after = httpx.get(served.url + "/metrics").text
                    frames = metric(after, "streamdet_serve_frames_scored_total") - metric(before, "streamdet_serve_frames_scored_total")
                    calls = metric(after, "streamdet_serve_model_calls_total") - metric(before, "streamdet_serve_model_calls_total")
                    ref_before = httpx.get(ref_url + "/calls").json()
                    theirs = load(ref_url, "/predict", files, n, args.requests)
                    ref_after = httpx.get(ref_url + "/calls").json()
                    ref_fpc = (ref_after["frames"] - ref_before["frames"]) / max(1, ref_after["calls"] - ref_before["calls"])
                    rows.append((n, "streamdet serve", ours, frames / max(1.0, calls)))
                    rows.append((n, "one request, one forward", theirs, ref_fpc))
        finally:
            reference.terminate()
            reference.wait(30)
    print(f"{args.config} config, {width}×{height} PNG images, {args.requests} requests per row, batch {cfg.batch}\n")
    print("| clients | server | requests/s | p50 latency (s) | p95 latency (s) | frames per model call |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n, name, figures, fpc in rows:
        print(f"| {n} | {name} | {figures['rate']:.2f} | {figures['p50']:.2f} | {figures['p95']:.2f} | {fpc:.1f} |")


if __name__ == "__main__":
    main()
