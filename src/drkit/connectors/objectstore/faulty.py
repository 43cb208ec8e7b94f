"""``Faulty(store, seed=...)``: seeded fault injection that keeps the store interface.

Used by drills and reliability tests to make a real store misbehave on cue:

- ``fail_rate``: each operation fails with :class:`TransientStorageError` before it runs;
- ``lost_ack_rate``: a write (put/delete) *is applied*, then reports a transient error,
  as when a response is lost on the network (the ambiguous case retries must handle);
- ``full_after_bytes``: once that many bytes were put, puts raise :class:`StorageFull`
  and write nothing (a full disk or an exhausted quota);
- ``unreachable``: every operation raises :class:`StoreUnreachable` (a dead endpoint);
  an attribute, so a drill can flip it while running;
- ``corrupt_reads``: the share of ``get``/``get_range`` results returned with one bit
  flipped (``True`` = all), the stored object staying intact (bad RAM, a bad cable).

``prefix`` limits every fault to keys starting with it. Every injected fault is appended
to ``injected`` as a :class:`Fault`, so a drill can journal what happened. The same
seed and the same sequence of calls inject the same faults.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore, StoreWrapper
from drkit.errors import StorageFull, StoreUnreachable, TransientStorageError


@dataclass(frozen=True, slots=True)
class Fault:
    op: str
    key: str
    kind: str  # "transient" | "lost_ack" | "full" | "unreachable" | "corrupt"


class Faulty(StoreWrapper):
    def __init__(
        self,
        store: ObjectStore,
        *,
        seed: int = 0,
        fail_rate: float = 0.0,
        lost_ack_rate: float = 0.0,
        full_after_bytes: int | None = None,
        unreachable: bool = False,
        corrupt_reads: float | bool = 0.0,
        prefix: str = "",
    ) -> None:
        for name, rate in (("fail_rate", fail_rate), ("lost_ack_rate", lost_ack_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {rate}")
        super().__init__(store)
        self.fail_rate = fail_rate
        self.lost_ack_rate = lost_ack_rate
        self.full_after_bytes = full_after_bytes
        self.unreachable = unreachable
        self.corrupt_reads = float(corrupt_reads)
        self.prefix = prefix
        #: Bytes accepted by ``put`` so far (counted against ``full_after_bytes``).
        self.bytes_written = 0
        self.injected: list[Fault] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def _record(self, op: str, key: str, kind: str) -> None:
        with self._lock:
            self.injected.append(Fault(op, key, kind))

    def _before(self, op: str, key: str, *, applies: bool | None = None) -> None:
        if not (key.startswith(self.prefix) if applies is None else applies):
            return
        if self.unreachable:
            self._record(op, key, "unreachable")
            raise StoreUnreachable(f"{op} {key}: {self.url} is unreachable (injected fault)")
        if self._roll(self.fail_rate):
            self._record(op, key, "transient")
            raise TransientStorageError(f"{op} {key} on {self.url}: injected transient failure")

    def _after_write(self, op: str, key: str) -> None:
        if key.startswith(self.prefix) and self._roll(self.lost_ack_rate):
            self._record(op, key, "lost_ack")
            raise TransientStorageError(
                f"{op} {key} on {self.url}: injected lost acknowledgement (the write happened)"
            )

    def _maybe_corrupt(self, op: str, key: str, data: bytes) -> bytes:
        if not data or not key.startswith(self.prefix) or not self._roll(self.corrupt_reads):
            return data
        with self._lock:
            bit = self._random.randrange(len(data) * 8)
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        self._record(op, key, "corrupt")
        return bytes(flipped)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        self._before("put", key)
        size = len(memoryview(data).cast("B"))
        if self.full_after_bytes is not None and key.startswith(self.prefix):
            with self._lock:
                full = self.bytes_written + size > self.full_after_bytes
            if full:
                self._record("put", key, "full")
                raise StorageFull(f"writing {key} in {self.url}: no space left (injected fault)")
        self.inner.put(key, data, if_absent=if_absent)
        with self._lock:
            self.bytes_written += size
        self._after_write("put", key)

    def get(self, key: str) -> bytes:
        self._before("get", key)
        return self._maybe_corrupt("get", key, self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._before("get_range", key)
        return self._maybe_corrupt("get_range", key, self.inner.get_range(key, offset, length))

    def stat(self, key: str) -> ObjectInfo:
        self._before("stat", key)
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # A listing is affected when it overlaps the faulty prefix in either direction.
        overlaps = prefix.startswith(self.prefix) or self.prefix.startswith(prefix)
        self._before("list", prefix, applies=overlaps)
        yield from self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._before("delete", key)
        self.inner.delete(key)
        self._after_write("delete", key)

    def __repr__(self) -> str:
        return f"Faulty({self.inner!r})"
