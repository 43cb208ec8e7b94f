"""Engine failures users hit, as one line with the cause and a hint (issue: tracebacks).

Embedded engines report a held lock or a permission problem each in their own way —
chromadb ``InternalError: attempt to write a readonly database``, lancedb
``RuntimeError``/``ValueError`` with ``Permission denied (os error 13)``, Qdrant local
``PermissionError`` or ``RuntimeError: ... already accessed by another instance``,
Milvus Lite a logged traceback and then a ``ConnectionConfigException`` without the
cause. :func:`engine_failure` recognises them on an exception and its causes; the
connectors call it at their boundary (``raise err from exc``), and
:func:`logged_cause` recovers the cause Milvus Lite only logs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from drkit.errors import EngineLocked, EnginePermissionDenied, VectorStoreError

T = TypeVar("T")

_PERMISSION = re.compile(
    r"permission denied|os error 13|readonly database|read-only file system|os error 30",
    re.IGNORECASE,
)
_LOCKED = re.compile(
    r"already accessed by another instance|holds the lock|lock.*(held|resource temporarily"
    r" unavailable)|database is locked",
    re.IGNORECASE,
)
_PATH = re.compile(r"""(?:at path|Permission denied:) ['"]?([^'",]+)['"]?""")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


_SERVER = {
    "qdrant": "go through a Qdrant server (qdrant+http://)",
    "milvus": "go through `milvus-lite server` (milvus://)",
}
_RUST_PLACE = re.compile(r",?\s*/\S+\.rs:\d+:\d+")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return _RUST_PLACE.sub("", text[0])[:300] if text else type(exc).__name__


def engine_failure(exc: BaseException, engine: str, url: str) -> VectorStoreError | None:
    """The drkit error for a held lock or a permission problem in ``exc`` (or its
    causes), else None."""
    for e in _chain(exc):
        line = _first_line(e)
        if _LOCKED.search(line):
            return EngineLocked(
                f"{engine} at {url} is held by another process: {line}",
                hint=f"stop the process that holds it, or {_SERVER.get(engine, 'use a server')}",
            )
        denied = (isinstance(e, PermissionError) or getattr(e, "errno", None) in _DENIED) or (
            _PERMISSION.search(line) is not None
        )
        if denied:
            path = getattr(e, "filename", None) or _path(line)
            where = f" ({path})" if path else ""
            return EnginePermissionDenied(
                f"{engine} at {url}: permission denied{where}: {line}",
                hint=f"give the user drkit runs as write access to {path or 'the engine path'}, "
                "or restore into another path",
            )
    return None


_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _path(line: str) -> str | None:
    m = _PATH.search(line)
    return m.group(1).strip() if m else None


@contextlib.contextmanager
def logged_cause(logger: str) -> Iterator[list[BaseException]]:
    """Capture (instead of printing) the exceptions ``logger`` logs with a traceback
    while the block runs; the list holds them (Milvus Lite logs the cause, then raises
    an exception without it)."""
    caught: list[BaseException] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                caught.append(record.exc_info[1])

    log = logging.getLogger(logger)
    handler, propagate = _Keep(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield caught
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def guarded(fn: Callable[[], T], engine: str, url: str) -> T:
    """``fn()``, with a held lock or a permission problem raised as drkit's error."""
    try:
        return fn()
    except VectorStoreError:
        raise
    except Exception as exc:
        err = engine_failure(exc, engine, url)
        if err is None:
            raise
        raise err from exc
