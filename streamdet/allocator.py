"""Keep freed frame-sized buffers in the C heap, so that decoding does not page-fault every frame afresh.

glibc serves each allocation above its mmap threshold (dynamic, starting at 128 KiB) with a fresh ``mmap`` and
unmaps it on free. A 1080p RGB frame is 6 MB, so as soon as a caller holds one frame while the next is converted
(any batch does), every frame's buffer is new memory: about 1,500 page faults, which on one core cost as much as
FFmpeg's conversion itself. Raising the mmap and trim thresholds once per process lets those buffers be reused.
"""

from __future__ import annotations

import ctypes
import functools
import os

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Below glibc's ceiling for the mmap threshold (32 MiB on 64-bit): a 2160p RGB frame (25 MB) stays in the heap.
MMAP_THRESHOLD = 32 << 20
# Freed memory kept at the top of the heap before it is given back to the system.
TRIM_THRESHOLD = 256 << 20

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself, without reading the executable)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


@functools.cache
def reuse_frame_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); True where they are now set.

    A no-op returning False off glibc, and where the user set malloc tunables in the environment.
    """
    user_set = any(os.environ.get(name) for name in _USER_SETTINGS) or "malloc" in os.environ.get("GLIBC_TUNABLES", "")
    if user_set or not _glibc():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
