"""Run ordered chunks of work in parallel threads and yield their items in chunk order, with bounded memory."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_END = object()


def workers_available() -> int:
    """The CPU cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def put_unless_stopped(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put `item` on a bounded queue unless `stop` is set first (so a producer never blocks forever on a full queue)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def ordered(chunks: Sequence[Callable[[], Iterator[T]]], workers: int, depth: int = 4) -> Iterator[T]:
    """Yield every item of ``chunks[0]()``, then of ``chunks[1]()``, ..., computed by up to ``workers`` threads.

    Each running chunk buffers at most ``depth`` items, so memory stays at ``workers × depth`` items. An error
    in a chunk is raised here when its turn comes; closing the iterator stops the workers.
    """
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield from chunk()
        return
    stop = threading.Event()
    queues: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in chunks]

    def put(q: queue.Queue, item: object) -> bool:
        return put_unless_stopped(q, item, stop)

    def run(chunk: Callable[[], Iterator[T]], q: queue.Queue) -> None:
        try:
            for item in chunk():
                if not put(q, item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it in order
            put(q, exc)
            return
        put(q, _END)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="streamdet-gop") as pool:
        try:
            for chunk, q in zip(chunks, queues):
                pool.submit(run, chunk, q)
            for q in queues:
                while (item := q.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stop.set()
