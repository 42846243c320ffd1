"""The job table: every accepted scan and its state, in SQLite (the standard library's), so none is lost in a crash.

A job is written (committed, fsynced) before the client hears `202`, moves queued → running → done/error in
single-row updates, and is deleted only when its client deletes it or its retention runs out. At start-up
`recover` puts the jobs that were running back in the queue, so a crash costs time, never a job.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "done", "error")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    spooled INTEGER NOT NULL,
    options TEXT NOT NULL,
    expected_frames INTEGER,
    callback TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    report TEXT,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created);
"""


@dataclass
class Job:
    """One row: who asked, what to scan (a spool file or a file under the media root) with which options, and its state."""

    id: str
    owner: str
    status: str
    name: str
    kind: str
    source: str
    spooled: bool
    options: dict[str, Any]
    created: float
    expected_frames: int | None = None
    callback: str | None = None
    idempotency_key: str | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    error: str | None = None
    result: str | None = None
    report: str | None = None


class Full(Exception):
    """The job was not admitted: `reason` is `queue` (all clients) or `token` (this client's share)."""

    def __init__(self, reason: str, limit: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


class JobStore:
    """The SQLite job table, shared by the request threads and the scan threads (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an accepted job is on disk before its 202 is sent
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def admit(self, job: Job, queue_size: int, per_owner: int) -> Job:
        """Insert `job` as queued unless the queue or its owner's share is full (`Full`); a job with the same
        owner and idempotency key as an earlier one is not inserted again: the earlier one is returned."""
        with self._lock, self._transaction():
            if job.idempotency_key is not None:
                earlier = self._db.execute("SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?", (job.owner, job.idempotency_key)).fetchone()
                if earlier is not None:
                    return _job(earlier)
            active = self._db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
            if active >= queue_size:
                raise Full("queue", queue_size)
            mine = self._db.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')", (job.owner,)).fetchone()[0]
            if mine >= per_owner:
                raise Full("token", per_owner)
            self._db.execute(
                "INSERT INTO jobs (id, owner, idempotency_key, status, name, kind, source, spooled, options, expected_frames, callback, created)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.owner, job.idempotency_key, job.name, job.kind, job.source, int(job.spooled), json.dumps(job.options),
                 job.expected_frames, job.callback, job.created),
            )
        return job

    def claim(self, most: int) -> list[Job]:
        """Up to `most` of the oldest queued jobs, now marked running (their attempts counted), in one transaction."""
        with self._lock, self._transaction():
            ids = [row["id"] for row in self._db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created, id LIMIT ?", (most,))]
            started = time.time()
            self._db.executemany("UPDATE jobs SET status = 'running', started = ?, attempts = attempts + 1 WHERE id = ?", [(started, i) for i in ids])
            jobs = {row["id"]: _job(row) for row in self._db.execute(f"SELECT * FROM jobs WHERE id IN ({','.join('?' * len(ids))})", ids)}
        return [jobs[i] for i in ids]

    def active(self, owner: str | None = None) -> int:
        """Jobs queued or running (of `owner`, where given)."""
        query = "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')" + (" AND owner = ?" if owner is not None else "")
        with self._lock:
            return self._db.execute(query, () if owner is None else (owner,)).fetchone()[0]

    def finish(self, job_id: str, status: str, result: str | None, report: str | None, error: str | None) -> bool:
        """Record a running job's outcome; False where it is no longer running (deleted meanwhile)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, result = ?, report = ?, error = ?, finished = ? WHERE id = ? AND status = 'running'",
                (status, result, report, error, time.time(), job_id),
            )
        return cursor.rowcount == 1

    def recover(self) -> list[str]:
        """Put the jobs a stopped server left running back in the queue (in their old order); their ids."""
        with self._lock, self._transaction():
            ids = [row["id"] for row in self._db.execute("SELECT id FROM jobs WHERE status = 'running' ORDER BY created, id")]
            self._db.execute("UPDATE jobs SET status = 'queued' WHERE status = 'running'")
        return ids

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job with this id (only if `owner` asked for it, where given), or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return _job(row)

    def listing(self, owner: str) -> list[dict[str, Any]]:
        """The owner's jobs, oldest first: id, status, name and times (no results)."""
        with self._lock:
            rows = self._db.execute("SELECT id, status, name, created, finished FROM jobs WHERE owner = ? ORDER BY created, id", (owner,)).fetchall()
        return [dict(row) for row in rows]

    def delete(self, job_id: str) -> Job | None:
        """Remove a job (any state) and return what it was, or None if there was none."""
        with self._lock, self._transaction():
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _job(row)

    def expire(self, before: float) -> int:
        """Delete the finished jobs that finished before `before` (epoch seconds); how many."""
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE status IN ('done', 'error') AND finished < ?", (before,)).rowcount

    def counts(self) -> dict[str, int]:
        """Jobs by status (every status present, zero included)."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {**dict.fromkeys(STATUSES, 0), **{row[0]: row[1] for row in rows}}

    def sources(self) -> set[str]:
        """The spool files that jobs still need (the spool removes any other file it finds at start-up)."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT source FROM jobs WHERE spooled = 1 AND status IN ('queued', 'running')")}

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on an exception), so a check and the write it guards are one step."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type | None, *rest: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["options"] = json.loads(values["options"])
    values["spooled"] = bool(values["spooled"])
    return Job(**values)

