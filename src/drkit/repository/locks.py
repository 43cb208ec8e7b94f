"""Locks as leases in ``locks/`` (docs/repository-format.md section 7)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drkit.errors import ObjectNotFound, RepositoryLocked

LEASE_S = 30 * 60.0
REFRESH_S = 5 * 60.0


@dataclass(frozen=True, slots=True)
class LockInfo:
    key: str
    exclusive: bool
    host: str
    pid: int
    time: float
    expires: float

    def stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if self.expires < now:
            return True
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


class RepoLock:
    """A held lock; refreshes itself in a daemon thread until :meth:`release`."""

    def __init__(
        self,
        exclusive: bool,
        put: Callable[[str, dict[str, Any]], None],
        delete: Callable[[str], None],
        list_locks: Callable[[], list[LockInfo]],
    ) -> None:
        self.exclusive = exclusive
        self.key = f"locks/{secrets.token_hex(32)}"
        self._put = put
        self._delete = delete
        self._stop = threading.Event()
        self._write()
        try:
            for other in list_locks():
                if other.key == self.key or other.stale():
                    continue
                if exclusive or other.exclusive:
                    kind = "exclusive" if other.exclusive else "shared"
                    raise RepositoryLocked(
                        f"repository is locked ({kind} lock by pid {other.pid} on {other.host}, "
                        f"{other.key})"
                    )
        except BaseException:
            self._delete(self.key)
            raise
        self._thread = threading.Thread(target=self._refresh, name="drkit-lock", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        now = time.time()
        doc = {
            "exclusive": self.exclusive,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": now,
            "expires": now + LEASE_S,
        }
        self._put(self.key, doc)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self._write()
            except Exception:
                continue

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(ObjectNotFound):
            self._delete(self.key)

    def __enter__(self) -> RepoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def parse_lock(key: str, plain: bytes) -> LockInfo:
    doc = json.loads(plain)
    return LockInfo(
        key=key,
        exclusive=bool(doc["exclusive"]),
        host=str(doc["host"]),
        pid=int(doc["pid"]),
        time=float(doc["time"]),
        expires=float(doc["expires"]),
    )
