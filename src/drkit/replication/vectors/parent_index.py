"""Ids as sorted 64-bit hashes: a snapshot's index as an incremental export (and the
comparison of a collection with a snapshot) looks records up, and the check that an
export met no id twice (:func:`any_repeated`).

Each id is kept as a 64-bit hash in one sorted array (with the permutation back to the
index's rows): 12 bytes a record and one ``searchsorted`` per batch, where a dict of the
ids' Python objects took a few hundred bytes a record (~600 MB at 2M records).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drkit.connectors.vectorstore.base import ID
from drkit.connectors.vectorstore.support import SeenIds


class IdIndex:
    """The position of each id of a list, looked up as sorted 64-bit hashes."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids: pa.Array = ids
        names = ids.to_pylist()
        keys = SeenIds.hashes(names)
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]
        #: two ids of one hash (a 64-bit collision): look ids up in a dict instead
        n = len(names)
        collide = bool(n > 1 and np.any(self._keys[1:] == self._keys[:-1]))
        self._exact: dict[str, int] | None = (
            {rid: i for i, rid in enumerate(names)} if collide else None
        )

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, ids: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The position of each of ``ids`` in the list, -1 where it has none."""
        names = ids.to_pylist()
        if self._exact is not None:
            exact = self._exact
            return np.fromiter((exact.get(r, -1) for r in names), np.int64, count=len(names))
        if not len(self) or not names:
            return np.full(len(names), -1, dtype=np.int64)
        want = SeenIds.hashes(names)
        at = np.minimum(np.searchsorted(self._keys, want), len(self) - 1)
        pos = np.where(self._keys[at] == want, self._order[at], -1).astype(np.int64)
        hit = pos >= 0
        if hit.any():  # a hash found may be another id's: compare the ids themselves
            same = pc.equal(self.ids.take(pa.array(pos[hit])), ids.filter(pa.array(hit)))
            pos[np.flatnonzero(hit)[~same.to_numpy(zero_copy_only=False)]] = -1
        return pos


class ParentIndex(IdIndex):
    """Positions of ids in the parent's index, their hashes, segments and rows, and which
    of them the current export met (the others were deleted)."""

    def __init__(self, index: pa.Table) -> None:
        super().__init__(index.column(ID).combine_chunks())
        digests = index.column("hash").combine_chunks()
        n = len(digests)
        self.digests = np.frombuffer(
            digests.buffers()[1], dtype="S16", count=n, offset=digests.offset * 16
        )
        self.segment = index.column("segment").to_numpy()
        self.row = index.column("row").to_numpy()
        self.seen = np.zeros(n, dtype=bool)

    def meet(
        self, ids: pa.Array, hashes: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Mark ``ids`` as met; their positions (-1: not in the index), whether each is in
        the index, and whether its record hash (a row of ``hashes``, ``(n, 16)`` uint8 as
        :func:`~.layout.record_hash_rows` gives them) is the one the index holds."""
        pos = self.find(ids)
        known = pos >= 0
        self.seen[pos[known]] = True
        same = np.zeros(len(pos), dtype=bool)
        rows = np.ascontiguousarray(hashes, dtype=np.uint8).view("S16").ravel()
        same[known] = self.digests[pos[known]] == rows[known]
        return pos, known, same

    def gone(self) -> pa.Array:
        """The ids of the parent the export did not meet."""
        return self.ids.filter(pa.array(~self.seen))


def any_repeated(chunks: list[pa.Array]) -> bool:
    """Whether an id occurs twice in ``chunks`` (an export that met a record twice).

    Compared as sorted 64-bit hashes, 8 bytes an id, and only the ids of a hash that
    repeats as strings: ``pc.unique`` over all ids built a hash table of their strings
    that took 188 MiB of a 2M-record snapshot's peak and stayed with the allocator."""
    keys = np.concatenate(
        [SeenIds.hashes(c.to_pylist()) for c in chunks] or [np.zeros(0, np.int64)]
    )
    ordered = np.sort(keys)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(twice):
        return False
    suspects = np.isin(keys, twice)
    names: list[str] = []
    at = 0
    for c in chunks:  # the ids behind the repeated hashes, compared themselves
        names += pa.array(c).filter(pa.array(suspects[at : at + len(c)])).to_pylist()
        at += len(c)
    return len(set(names)) != len(names)
