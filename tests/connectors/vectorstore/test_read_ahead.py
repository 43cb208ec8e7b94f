"""A restore reads its records in a helper thread ahead of the engine's import
(``read_ahead``): same items, same errors at the same place, and nothing left running."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from drkit.errors import CorruptObject
from drkit.replication.vectors.reading import read_ahead


class Source:
    """An iterator that says where it ran, how far it got and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.made = 0
        self.threads: set[str] = set()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[int]:
        return self.gen()

    def gen(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise CorruptObject(f"record {i} does not match its hash")
                self.made += 1
                yield i
        finally:
            self.closed.set()


def test_the_items_come_in_order_from_another_thread() -> None:
    src = Source(50)
    assert list(read_ahead(iter(src), depth=3)) == list(range(50))
    assert src.threads == {"drkit-read-ahead"}
    assert src.closed.is_set()


def test_an_error_is_raised_where_the_consumer_meets_it() -> None:
    src = Source(10, fail_at=6)
    got: list[int] = []

    def consume() -> None:
        got.extend(read_ahead(iter(src), depth=2))

    with pytest.raises(CorruptObject, match="record 6"):
        consume()
    assert got == [0, 1, 2, 3, 4, 5]


def test_a_consumer_that_stops_early_stops_the_helper_and_closes_the_source() -> None:
    src = Source(10_000)
    before = {t.name for t in threading.enumerate()}
    with closing(read_ahead(iter(src), depth=4)) as items:
        for item in items:
            if item == 2:
                break
    assert src.closed.is_set()
    assert src.made <= 3 + 4 + 1  # what was taken, the queue, the one in hand
    assert "drkit-read-ahead" not in {t.name for t in threading.enumerate()} - before


def test_an_empty_source_ends_at_once() -> None:
    assert list(read_ahead(iter(Source(0)))) == []
