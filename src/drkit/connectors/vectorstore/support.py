"""Helpers the connectors share: error builders, naming rules, chunking, exact top-k,
the ids an import call wrote and the batches it writes (:func:`import_groups`).

Not part of the interface (:mod:`drkit.connectors.vectorstore.base`); connectors import
them from here (``base`` re-exports them for older imports).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.collection import Metric
from drkit.connectors.vectorstore.records import ID
from drkit.errors import CollectionExists, CollectionNotFound, IncompatibleTarget

T = TypeVar("T")


def exists_error(name: str) -> CollectionExists:
    return CollectionExists(f"collection {name!r} already exists")


def check_name_pattern(name: str, pattern: re.Pattern[str], engine: str, rule: str) -> None:
    """Raise :class:`IncompatibleTarget` unless ``name`` matches an engine's naming ``rule``."""
    if not pattern.fullmatch(name):
        raise IncompatibleTarget(
            f"{name!r} is not a valid {engine} collection name ({rule})",
            hint="choose another name with --collection",
        )


@contextlib.contextmanager
def exists_as(name: str, marker: str) -> Iterator[None]:
    """Translate an engine's "already exists" refusal (``marker`` in the message) of a create."""
    try:
        yield
    except IncompatibleTarget as exc:
        if marker in str(exc):
            raise exists_error(name) from exc
        raise


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def regroup(
    batches: Iterable[pa.RecordBatch], rows: int, nbytes: int | None = None
) -> Iterator[pa.Table]:
    """The rows of ``batches`` in consecutive tables of ``rows`` rows, or fewer once a
    table holds ``nbytes`` (the last one shorter), without copying: small batches are
    gathered as a table's chunks, large ones sliced. An engine whose every write is a
    commit (LanceDB: a new version, whose manifest lists every fragment) writes one per
    table, however the caller cut the records (a restore reads them a segment piece at a
    time: ~1,300 records of 768 floats)."""
    pending: list[pa.RecordBatch] = []
    have = size = 0
    schema = None
    for batch in batches:
        schema = batch.schema
        while len(batch):
            take = batch.slice(0, rows - have)
            pending.append(take)
            have += len(take)
            size += take.nbytes
            batch = batch.slice(len(take))
            if have == rows or (nbytes is not None and size >= nbytes):
                yield pa.Table.from_batches(pending, schema=schema)
                pending, have, size = [], 0, 0
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def import_groups(
    batches: Iterable[pa.RecordBatch], rows: int, empty: bool
) -> Iterator[tuple[pa.RecordBatch, list[str], bool]]:
    """An import's writes: the records in batches of ``rows`` however the caller cut them
    (:func:`regroup`), an id repeated within one keeping its last row (one write cannot
    hold an id twice), each with its ids and whether it is *fresh*: the collection was
    ``empty`` when the import started and the import has written none of its ids before,
    so none can be there (no lookup, delete or conflict handling needed: a restore's every
    batch). An engine whose upsert keeps old payload keys deletes a batch that is not."""
    seen = SeenIds() if empty else None
    for table in regroup(batches, rows):
        batch = table.combine_chunks().to_batches()[0]
        ids = batch.column(ID).to_pylist()
        keep = last_versions(ids)
        if keep is not None:
            batch, ids = batch.take(pa.array(keep)), [ids[i] for i in keep]
        hashes = SeenIds.hashes(ids)
        fresh = seen is not None and not seen.any_of(hashes)
        if seen is not None:
            seen.add(hashes)
        yield batch, ids, fresh


def last_versions(ids: Sequence[str]) -> list[int] | None:
    """Row numbers keeping the last row of each id (an upsert's winner), in order; None
    when no id repeats."""
    last = {rid: i for i, rid in enumerate(ids)}
    return None if len(last) == len(ids) else sorted(last.values())


class SeenIds:
    """The ids written so far in one import call, kept as 64-bit hashes (8 bytes an id,
    whatever its length) in a few sorted runs (a hash twice in a run does no harm).

    :meth:`any_of` may say True for an id not written (two ids of one hash), never False
    for one that was: a caller takes True as "maybe" and does the careful thing.
    """

    def __init__(self) -> None:
        #: sorted, unique; each run at least twice as long as the next (log n runs)
        self._runs: list[np.ndarray[Any, np.dtype[np.int64]]] = []

    @staticmethod
    def hashes(ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
        # hash() of a str is salted per process: stable for one call, all it needs
        return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))

    def any_of(self, hashes: np.ndarray[Any, np.dtype[np.int64]]) -> bool:
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            if bool(np.any(run[at] == hashes)):
                return True
        return False

    def add(self, hashes: np.ndarray[Any, np.dtype[np.int64]]) -> None:
        if not len(hashes):
            return
        self._runs.append(np.sort(hashes))
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            # a stable sort of two sorted runs is one linear merge (timsort finds them);
            # union1d sorted both again from scratch: 7 of a 1M restore's 53 s
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")


def not_found(name: str, url: str) -> CollectionNotFound:
    return CollectionNotFound(
        f"no collection {name!r} in {url}",
        hint="list the collections of the store, or check the collection name",
    )


def brute_force_top_k(
    matrix: np.ndarray[Any, Any], query: np.ndarray[Any, Any], metric: Metric, k: int
) -> list[int]:
    """Row numbers of the exact top-k of ``query`` in ``matrix`` (best first)."""
    if len(matrix) == 0:
        return []
    q = np.asarray(query, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if metric is Metric.L2:
        score = -np.sum((m - q) ** 2, axis=1)
    elif metric is Metric.DOT:
        score = m @ q
    else:
        norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
        norms[norms == 0] = 1.0
        score = (m @ q) / norms
    order = np.argsort(-score, kind="stable")[:k]
    return [int(i) for i in order]


_RENAME_EXCHANGE = 2


def exchange_paths(a: str, b: str) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``): a
    reader of either path sees the old entry or the new, never neither. False where the
    OS or the filesystem cannot (nothing was changed then); other errors raise OSError."""
    import ctypes
    import ctypes.util
    import errno
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # no libc, or a glibc older than 2.28
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)
