"""The spool folder: uploads between their arrival and the end of their job, named by job id only.

An upload is written to a temporary file in the folder and renamed to `<job id>.upload` (flushed, then the
folder) once it is whole and known to be media, so a crash leaves either nothing or a complete file. Client
file names never reach the file system. A file is removed when its job ends; at start-up every file that no
queued or running job needs (a half-written upload, a job deleted in a crash) is removed too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..files import move_into_place

PARTIAL = ".part"
UPLOAD = ".upload"


class Spool:
    """A folder of uploads, each file named by the job it belongs to."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def open_partial(self) -> tuple[Path, BinaryIO]:
        """A new temporary file in the spool for an arriving upload, open for writing."""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=PARTIAL, dir=self.root)
        return Path(name), os.fdopen(fd, "wb")

    def keep(self, partial: Path, job_id: str) -> Path:
        """Move a whole upload into place as the job's file (durably); its final path (what it is, the content says)."""
        final = self.root / f"{job_id}{UPLOAD}"
        move_into_place(partial, final, fsync=True)
        return final

    def owns(self, path: str | Path) -> bool:
        """Whether `path` is a file in this spool (only those are ever removed)."""
        return Path(path).parent.resolve() == self.root.resolve()

    def remove(self, path: str | Path) -> None:
        """Delete a spool file if it is still there."""
        if self.owns(path):
            Path(path).unlink(missing_ok=True)

    def sweep(self, needed: set[str]) -> int:
        """Delete every file of the spool that is not in `needed` (paths); how many."""
        keep = {os.path.realpath(p) for p in needed}
        removed = 0
        for entry in self.root.iterdir():
            if entry.is_file() and os.path.realpath(entry) not in keep:
                entry.unlink(missing_ok=True)
                removed += 1
        return removed
