"""The output folder of a cluster scan: JSONL part files written atomically, one row per input, read back to resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import StreamdetError
from ..files import write_text

PART_GLOB = "part-*.jsonl"
SETTINGS = "settings.json"


def read_rows(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every row in the folder's part files by path; a later part (parts are named in write order) wins."""
    rows: dict[str, dict[str, Any]] = {}
    for part in sorted(Path(out_dir).glob(PART_GLOB)):
        for number, line in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
                rows[row["path"]] = row
            except (ValueError, KeyError, TypeError):
                raise StreamdetError(f"{part}:{number}: not a result row (a JSON object with a path); move the file away to rescan its inputs") from None
    return rows


def check_settings(out_dir: str | Path, settings: dict[str, Any]) -> None:
    """Record the settings that decide verdicts; a folder written with other settings is an error, not a mixed result."""
    path = Path(out_dir) / SETTINGS
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise StreamdetError(f"{path}: not JSON; remove it or use a new --out-dir") from None
        changed = sorted(k for k in settings.keys() | before.keys() if before.get(k) != settings.get(k))
        if changed:
            raise StreamdetError(f"{out_dir}: was written with other settings (different {', '.join(changed)}); use a new --out-dir")
        return
    write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n", fsync=True)


class PartWriter:
    """Buffers result rows and writes them as a new part file every `rows` rows or `seconds` seconds (and on close)."""

    def __init__(self, out_dir: str | Path, rows: int = 100, seconds: float = 30.0) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rows = rows
        self.seconds = seconds
        self.run = time.time_ns()
        self.parts = 0
        self.written = 0
        self._buffer: list[dict[str, Any]] = []
        self._since = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        """Queue a row; flush when the part is full or old enough."""
        self._buffer.append(row)
        if len(self._buffer) >= self.rows or time.monotonic() - self._since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one part file (atomically, fsynced), if there are any."""
        if self._buffer:
            text = "".join(json.dumps(row) + "\n" for row in self._buffer)
            write_text(self.out_dir / f"part-{self.run}-{self.parts:06d}.jsonl", text, fsync=True)
            self.parts += 1
            self.written += len(self._buffer)
            self._buffer.clear()
        self._since = time.monotonic()
