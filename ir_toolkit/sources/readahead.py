"""An iterator's items computed one ahead, in a thread of their own (:func:`ahead`).

The Purview fast path (:mod:`ir_toolkit.sources.fastpath`) maps each CSV block in one DuckDB query on one
DuckDB thread: with DuckDB's own threads the same rows cost about 15% more CPU (docs/import.md, sessions 8
and 10). On one thread DuckDB runs the query inside each fetch, so the fetches are made here, in a reader
thread, while the caller maps and writes the batch before: DuckDB and Arrow release the GIL while they work,
so the two overlap as they did with DuckDB's threads, for the CPU of one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL = 0.1  # seconds between the reader thread's looks at the stop flag while the caller is busy


class _End:
    """The reader thread's last item: the iterator ended, or raised ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def ahead(items: Iterator[T], name: str = "ir_toolkit-readahead") -> Generator[T, None, None]:
    """The items of ``items`` in order, each fetched by a reader thread while the caller uses the one before.

    An exception ``items`` raises is raised here, after the items it gave before it. Closing this
    iterator early (or an exception in the caller) stops the reader thread and waits for it, so that
    ``items``' resources (a DuckDB connection) may be closed after it.

    Args:
        items: The iterator; only the reader thread advances it.
        name: The reader thread's name.
    """
    handed: queue.Queue[T | _End] = queue.Queue(maxsize=1)  # one item waiting: memory for one batch more
    stop = threading.Event()

    def give(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not give(item):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            give(_End(exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator left early: its own clean-up, in the thread that ran it
                close()
        give(_End())

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            item = handed.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                handed.get_nowait()  # a reader waiting to hand an item on sees the stop flag
            except queue.Empty:
                pass
            reader.join(_POLL)
