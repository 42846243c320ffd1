"""A real `python -m streamdet serve` process on a free loopback port, for the service tests and its benchmark.

The server is started with `--port 0` and announces the port it got on stderr; every wait here is on a
condition (that line, `/readyz`, a job's status) with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

ROOT = Path(__file__).resolve().parents[1]
ANNOUNCE = re.compile(r"listening on (http://\S+)")
FINISHED = ("done", "error")


class ServeProcess:
    """`streamdet serve ARGS` in a child process; `url` once it listens. Use as a context manager."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, start_s: float = 180.0) -> None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamdet", "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment, cwd=cwd,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self._announced = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._announced.wait(start_s) or self.url is None:
            self.kill()
            raise RuntimeError(f"streamdet serve did not start listening: {self.stderr()}")

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = ANNOUNCE.search(line)
            if found and self.url is None:
                self.url = found.group(1)
                self._announced.set()
        self._announced.set()

    def stderr(self) -> str:
        """What the server wrote on stderr so far."""
        return "\n".join(self.lines)

    def client(self, token: str | None = None, timeout: float = 120.0) -> httpx.Client:
        """An HTTP client for this server (with a Bearer token where given)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def wait_ready(self, deadline_s: float = 300.0) -> None:
        """Wait until `/readyz` answers 200 (models loaded), failing early if the process ends."""
        end = time.monotonic() + deadline_s
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while time.monotonic() < end:
                if self.process.poll() is not None:
                    raise RuntimeError(f"streamdet serve exited with {self.process.returncode}: {self.stderr()}")
                try:
                    if http.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"streamdet serve not ready after {deadline_s} s: {self.stderr()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_finished(http: httpx.Client, job_id: str, deadline_s: float = 300.0, seen: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Poll a job (long polls of a few seconds) until it is done or in error; its last status document."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        answer = http.get(f"/v1/scans/{job_id}", params={"wait": 5})
        answer.raise_for_status()
        doc = answer.json()
        if seen is not None:
            seen(doc)
        if doc["status"] in FINISHED:
            return doc
    raise TimeoutError(f"job {job_id} not finished after {deadline_s} s")
