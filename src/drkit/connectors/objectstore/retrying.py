"""``Retrying(store)``: retry transient errors with exponential backoff and full jitter.

Only errors with ``retryable = True`` (:class:`TransientStorageError`) are retried;
not-found, exists, full, denied and unreachable fail at once (the connector already
spent its own short retry budget before calling an endpoint unreachable).

Two subtleties, both handled here so that callers need not:

- ``put(if_absent=True)`` whose response was lost may have been applied: the retry
  then sees :class:`ObjectExists`. If the stored bytes equal ours the put succeeded.
- ``list`` that fails part-way restarts and skips the keys it already yielded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore, StoreWrapper
from drkit.errors import DrkitError, ObjectExists, ObjectNotFound

T = TypeVar("T")


class Retrying(StoreWrapper):
    def __init__(
        self,
        store: ObjectStore,
        *,
        attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        super().__init__(store)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        #: How many retries this wrapper has made (for reports and tests).
        self.retries = 0
        self._random = random.Random(seed)
        self._sleep = sleep

    def _delay(self, attempt: int) -> float:
        # "Full jitter": uniform in [0, min(max, base * 2**attempt)] spreads out herds.
        cap = min(self.max_delay, self.base_delay * (2**attempt))
        return self._random.uniform(0, cap)

    def _back_off(self, exc: DrkitError, attempt: int) -> None:
        """After failed ``attempt`` (1-based): re-raise ``exc`` if final, else sleep."""
        if not exc.retryable or attempt >= self.attempts:
            raise exc
        self.retries += 1
        self._sleep(self._delay(attempt - 1))

    def _call(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except DrkitError as exc:
                attempt += 1
                self._back_off(exc, attempt)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        if not if_absent:
            self._call(lambda: self.inner.put(key, data))
            return
        state = {"failed_once": False}

        def attempt() -> None:
            try:
                self.inner.put(key, data, if_absent=True)
            except ObjectExists:
                if state["failed_once"] and self._holds(key, data):
                    return  # our earlier attempt landed; its acknowledgement was lost
                raise
            except DrkitError as exc:
                if exc.retryable:
                    state["failed_once"] = True
                raise

        self._call(attempt)

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self._call(lambda: self.inner.get(key)) == data
        except ObjectNotFound:
            return False

    def get(self, key: str) -> bytes:
        return self._call(lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._call(lambda: self.inner.get_range(key, offset, length))

    def stat(self, key: str) -> ObjectInfo:
        return self._call(lambda: self.inner.stat(key))

    def delete(self, key: str) -> None:
        self._call(lambda: self.inner.delete(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        seen: set[str] = set()
        attempt = 0
        while True:
            try:
                for info in self.inner.list(prefix):
                    if info.key not in seen:
                        seen.add(info.key)
                        yield info
                return
            except DrkitError as exc:
                attempt += 1
                self._back_off(exc, attempt)

    def __repr__(self) -> str:
        return f"Retrying({self.inner!r}, attempts={self.attempts})"
