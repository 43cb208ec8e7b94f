"""Retrying and Faulty beyond the conformance suite: what is retried, what is injected."""

from __future__ import annotations

import contextlib

import pytest

from drkit.connectors.objectstore.faulty import Fault, Faulty
from drkit.connectors.objectstore.memory import MemoryStore
from drkit.connectors.objectstore.retrying import Retrying
from drkit.errors import (
    ObjectExists,
    ObjectNotFound,
    StorageFull,
    StoreUnreachable,
    TransientStorageError,
)


class _FailFirst(MemoryStore):
    """A memory store whose first ``n`` calls of ``op`` raise ``error``."""

    def __init__(self, op: str, n: int, error: Exception) -> None:
        super().__init__()
        self.op, self.left, self.error, self.calls = op, n, error, 0

    def _maybe(self, op: str) -> None:
        if op == self.op:
            self.calls += 1
            if self.left > 0:
                self.left -= 1
                raise self.error

    def get(self, key: str) -> bytes:
        self._maybe("get")
        return super().get(key)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        self._maybe("put")
        super().put(key, data, if_absent=if_absent)


def test_retries_transient_errors_with_bounded_backoff() -> None:
    inner = _FailFirst("get", 4, TransientStorageError("hiccup"))
    inner.put("k", b"v")
    delays: list[float] = []
    store = Retrying(inner, attempts=5, base_delay=0.5, max_delay=1.5, seed=1, sleep=delays.append)
    assert store.get("k") == b"v"
    assert inner.calls == 5
    assert store.retries == 4
    caps = [0.5, 1.0, 1.5, 1.5]  # base * 2**n, capped at max_delay
    assert len(delays) == 4
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_gives_up_after_attempts() -> None:
    inner = _FailFirst("get", 10, TransientStorageError("hiccup"))
    store = Retrying(inner, attempts=3, sleep=lambda _: None)
    with pytest.raises(TransientStorageError):
        store.get("k")
    assert inner.calls == 3


@pytest.mark.parametrize(
    "error", [ObjectNotFound("x"), StoreUnreachable("x"), StorageFull("x"), ObjectExists("x")]
)
def test_does_not_retry_other_errors(error: Exception) -> None:
    inner = _FailFirst("get", 1, error)
    store = Retrying(inner, attempts=5, sleep=lambda _: None)
    with pytest.raises(type(error)):
        store.get("k")
    assert inner.calls == 1


def test_lost_ack_on_create_counts_as_success() -> None:
    """put(if_absent) applied but unacknowledged: the retry sees our own bytes."""
    faulty = Faulty(MemoryStore(), seed=0, lost_ack_rate=1.0)
    store = Retrying(faulty, attempts=3, sleep=lambda _: None)
    store.put("lock", b"mine", if_absent=True)
    assert faulty.inner.get("lock") == b"mine"
    assert [f.kind for f in faulty.injected] == ["lost_ack"]
    faulty.lost_ack_rate = 0.0
    with pytest.raises(ObjectExists):  # someone else's (or an earlier) object still wins
        store.put("lock", b"theirs", if_absent=True)


def test_list_restarts_without_duplicates() -> None:
    class _Flaky(MemoryStore):
        failed = False

        def list(self, prefix: str = ""):  # type: ignore[no-untyped-def]
            for n, info in enumerate(super().list(prefix)):
                if n == 2 and not self.failed:
                    self.failed = True
                    raise TransientStorageError("connection reset mid-listing")
                yield info

    inner = _Flaky()
    for i in range(5):
        inner.put(f"k{i}", b"x")
    keys = [i.key for i in Retrying(inner, sleep=lambda _: None).list()]
    assert sorted(keys) == [f"k{i}" for i in range(5)]


def test_faulty_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[Fault]:
        store = Faulty(MemoryStore(), seed=seed, fail_rate=0.5)
        for i in range(40):
            with contextlib.suppress(TransientStorageError):
                store.put(f"k{i}", b"x")
        return store.injected

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert 5 < len(run(1)) < 35


def test_faulty_full_after_bytes() -> None:
    store = Faulty(MemoryStore(), full_after_bytes=100)
    store.put("a", b"x" * 60)
    with pytest.raises(StorageFull) as info:
        store.put("b", b"x" * 60)
    assert info.value.hint is not None
    assert not store.inner.exists("b")
    store.put("c", b"x" * 40)  # what still fits is accepted
    assert store.bytes_written == 100
    assert [f.kind for f in store.injected] == ["full"]


def test_faulty_unreachable_can_be_toggled() -> None:
    store = Faulty(MemoryStore(), unreachable=True)
    with pytest.raises(StoreUnreachable):
        store.put("k", b"v")
    with pytest.raises(StoreUnreachable):
        list(store.list())
    store.unreachable = False
    store.put("k", b"v")
    assert store.get("k") == b"v"


def test_faulty_corrupt_reads_flip_one_bit_and_keep_the_object() -> None:
    store = Faulty(MemoryStore(), seed=5, corrupt_reads=True)
    data = bytes(range(256)) * 16
    store.put("k", data)
    for read in (store.get("k"), store.get_range("k", 0, len(data))):
        assert len(read) == len(data)
        diff = int.from_bytes(read, "big") ^ int.from_bytes(data, "big")
        assert bin(diff).count("1") == 1
    assert store.inner.get("k") == data
    assert [f.kind for f in store.injected] == ["corrupt", "corrupt"]


def test_faulty_prefix_limits_faults() -> None:
    store = Faulty(MemoryStore(), unreachable=True, prefix="data/")
    store.put("index/1", b"fine")
    with pytest.raises(StoreUnreachable):
        store.put("data/1", b"no")
    assert [i.key for i in store.list("index/")] == ["index/1"]
    with pytest.raises(StoreUnreachable):
        list(store.list(""))  # the whole listing includes data/


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="fail_rate"):
        Faulty(MemoryStore(), fail_rate=1.5)
    with pytest.raises(ValueError, match="attempts"):
        Retrying(MemoryStore(), attempts=0)


def test_wrappers_keep_url_and_capabilities() -> None:
    inner = MemoryStore.named("wrapped")
    try:
        for wrapper in (Retrying(inner), Faulty(inner)):
            assert wrapper.url == "mem://wrapped"
            assert wrapper.capabilities == inner.capabilities
            assert "mem://wrapped" in repr(wrapper)
    finally:
        MemoryStore.forget("wrapped")
