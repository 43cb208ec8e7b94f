"""The records of a copy whose hash differs from the snapshot's on an engine that rounds
or re-normalises cosine vectors, compared with the snapshot's records within float32
tolerance once the export is over.

A Chroma restore brings back about three records in four within an ulp of the
snapshot's vectors, so these are most of a collection. They are written as they come
to an Arrow IPC file in a temporary directory and read back memory-mapped, with the
position of each in the snapshot's index, then met batch by batch as the snapshot's
records are read (whole columns compared at once): memory stays a few batches and
8 bytes per indexed record (the file takes the suspects' size on disk, ~2.4 GB for a
1M x 768 Chroma copy, in ``$TMPDIR``), where a dict of Python rows took ~30 KB a record (the
whole collection, 1M x 768 would not fit) and the row-by-row comparison tripled the
check of a restored Chroma copy (20k x 768: 8.4 s, the same export compared exactly
2.7 s).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    PAYLOAD,
    CollectionConfig,
    Metric,
    vectors_of,
)

#: np.allclose's defaults tightened to float32: the rounding engines differ by an ulp
RTOL, ATOL = 1e-5, 1e-6


class Suspects:
    """Exported records whose hash differs from the one expected, kept by their
    position in a list of ``records`` ids (a snapshot's index, a standby's differing
    ids) until they meet their counterparts. Use it as a context manager: the spill
    file goes when the block ends, whether or not the export finished."""

    def __init__(self, records: int) -> None:
        #: row in the spill file of the record at each position (-1: not a suspect)
        self._at = np.full(records, -1, dtype=np.int64)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._writer: ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None
        self._closed = False
        self.count = 0

    def __enter__(self) -> Suspects:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close and remove the spill file (idempotent)."""
        if self._writer is not None and not self._closed:
            self._writer.close()
        self._closed = True
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __len__(self) -> int:
        return self.count

    def add(
        self, batch: pa.RecordBatch, rows: np.ndarray[Any, Any], pos: np.ndarray[Any, Any]
    ) -> None:
        """Keep ``batch``'s ``rows``, the records at positions ``pos``."""
        if not len(rows):
            return
        taken = batch.take(pa.array(rows))
        if self._writer is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="drkit-compare-")
            self._schema = taken.schema  # the writer does not say it
            self._writer = ipc.new_file(self._path, taken.schema)
        elif taken.schema != self._schema:
            taken = taken.cast(self._schema)
        self._writer.write_batch(taken)
        self._at[pos] = np.arange(self.count, self.count + len(rows))
        self.count += len(rows)

    @property
    def _path(self) -> str:
        assert self._tmp is not None
        return str(Path(self._tmp.name) / "suspects.arrow")

    def settle(
        self,
        batches: Iterable[pa.RecordBatch],
        find: Callable[[pa.Array], np.ndarray[Any, np.dtype[np.int64]]],
        config: CollectionConfig,
        *,
        by_direction: bool,
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Meet each suspect with its counterpart among ``batches`` (``find`` gives a
        batch's ids their positions): for every position, whether a suspect is there and
        its counterpart is the same within tolerance (:func:`same_rows`). Suspects
        ``batches`` never met are not."""
        same = np.zeros(len(self._at), dtype=bool)
        if self._writer is None:
            return same
        self._writer.close()
        self._closed = True
        try:
            with pa.memory_map(self._path) as source:
                spilled = ipc.open_file(source).read_all()
                for batch in batches:
                    pos = find(batch.column(ID))
                    at = np.where(pos >= 0, self._at[pos], -1)
                    mine = at >= 0
                    if not mine.any():
                        continue
                    got = spilled.take(pa.array(at[mine])).combine_chunks().to_batches()[0]
                    want = batch.filter(pa.array(mine))
                    same[pos[mine]] = same_rows(config, got, want, by_direction=by_direction)
                del spilled
        finally:
            self.close()
        return same

    def suspected(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """For every position, whether a record there was a suspect."""
        return self._at >= 0


def same_rows(
    config: CollectionConfig, got: pa.RecordBatch, want: pa.RecordBatch, *, by_direction: bool
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Row by row, whether ``got`` is ``want`` within float32 tolerance: payload and
    document exactly, each vector within :data:`RTOL`/:data:`ATOL` of ``want``'s (cosine
    vectors, ``by_direction``: their directions — Qdrant local mode exports unit vectors
    from the client that wrote them, and the vectors as given once reopened)."""
    same = _equal(got.column(PAYLOAD), want.column(PAYLOAD)) & _equal(
        got.column(DOCUMENT), want.column(DOCUMENT)
    )
    for v in config.vectors:
        a, b = vectors_of(got, v.column), vectors_of(want, v.column)
        if by_direction and v.metric == Metric.COSINE:
            a, b = unit_rows(a), unit_rows(b)
        same &= np.all(np.abs(a - b) <= ATOL + RTOL * np.abs(b), axis=1)
    return same


def _equal(a: pa.Array, b: pa.Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Element-wise equality, two nulls equal."""
    eq = pc.fill_null(pc.equal(a, b), False)
    both = pc.and_(pc.is_null(a), pc.is_null(b))
    return np.asarray(pc.or_(eq, both).to_numpy(zero_copy_only=False), dtype=bool)


def unit_rows(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    # a zero vector stays zero, as it has no direction
    out: np.ndarray[Any, Any] = np.divide(v, n, out=np.zeros_like(v), where=n > 0)
    return out
