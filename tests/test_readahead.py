"""readahead.ahead: an iterator's items fetched by a reader thread, in order, errors and early ends passed on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ir_toolkit.sources.readahead import ahead


def _alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_items_in_order_each_made_in_the_reader_thread() -> None:
    made_in: list[str] = []

    def items() -> Iterator[int]:
        for i in range(25):
            made_in.append(threading.current_thread().name)
            yield i

    assert list(ahead(items(), "t-order")) == list(range(25))
    assert set(made_in) == {"t-order"}
    assert not _alive("t-order")


def test_the_next_item_is_made_while_the_caller_works() -> None:
    asked = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        asked.set()  # the reader went on to item 2 before the caller asked for it
        yield 2

    it = ahead(items(), "t-overlap")
    assert next(it) == 1
    assert asked.wait(5)
    assert list(it) == [2]


def test_an_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken row 3")

    got: list[int] = []
    with pytest.raises(ValueError, match="broken row 3"):
        for i in ahead(items(), "t-error"):
            got.append(i)
    assert got == [1, 2]
    assert not _alive("t-error")


def test_closed_early_the_reader_stops_and_its_iterator_is_closed() -> None:
    closed = threading.Event()
    made: list[int] = []

    def items() -> Iterator[int]:
        try:
            for i in range(1000):
                made.append(i)
                yield i
        finally:
            closed.set()

    it = ahead(items(), "t-close")
    assert next(it) == 0
    it.close()
    assert closed.is_set()  # close() waited for the reader, which closed the generator in its own thread
    assert not _alive("t-close")
    assert len(made) <= 3  # one handed, one waiting in the queue, one the reader held when it stopped


def test_an_error_in_the_caller_stops_the_reader() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="caller"):
        for i in ahead(items(), "t-caller"):
            if i == 3:
                raise RuntimeError("caller")
    deadline = time.monotonic() + 5
    while _alive("t-caller") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed.is_set()
    assert not _alive("t-caller")
