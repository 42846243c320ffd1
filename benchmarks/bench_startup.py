"""Start-up of the commands a user runs first: wall time and peak memory of whole processes, as a table.

Each command runs once first (its files may not be in the page cache yet: "first") and then `--repeat` times
("warm": median and max). A config error and `weights list` show that a mistake or a question answers without
the models' libraries. Target (issue "One scan engine"): well under a second warm, < 0.5 s on a quiet machine.

    python benchmarks/bench_startup.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "scan --help": ["scan", "--help"],
    "weights list": ["weights", "list"],
    "config error": ["scan", "x.mp4", "--threshold", "2"],
    "missing input": ["scan", "/nonexistent.mp4", "--config", "tiny"],
}


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one `python -m streamdet ARGS` process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "streamdet", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Warm runs per command.")
    options = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])), "STREAMDET_HOME": tempfile.mkdtemp()}
    print("| command | exit | first s | warm median s | warm max s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, args in COMMANDS.items():
        first, _, code = run_once(args, env)
        warm = [run_once(args, env) for _ in range(options.repeat)]
        seconds = [s for s, _, _ in warm]
        rss = max(r for _, r, _ in warm)
        print(f"| {name} | {code} | {first:.2f} | {statistics.median(seconds):.2f} | {max(seconds):.2f} | {rss:.0f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
