"""One export of a collection into new segments and index parts (``ExportPass``), and
the blob writer it encodes through (``BlobWriter``); :mod:`.snapshot` assembles the
snapshot from them."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import ID, CollectionConfig, CutInfo, VectorStore
from drkit.errors import VectorStoreError
from drkit.repository import Repository
from drkit.repository.pipeline import BlobPipeline

from .layout import (
    HASH,
    Segment,
    encode_arrow,
    hash_array,
    pieces,
    record_hash_rows,
    segment_pieces,
    segment_schema,
)
from .parent_index import ParentIndex, any_repeated
from .reading import Opened, Progress

log = logging.getLogger("drkit.replication.vectors")


class BlobWriter(BlobPipeline):
    """The repository's blob pipeline with a smaller window (vector pieces are large),
    fed whole buffers or pre-cut pieces."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(repo, window=repo.workers * 3 + 2)

    def write(self, data: bytes | memoryview, mode: int | None = None) -> list[str]:
        """Queue ``data`` (cut into pieces); the returned list is filled by :meth:`drain`."""
        return self.write_parts([(p, mode) for p in pieces(data)])

    def write_parts(self, parts: list[tuple[bytes | memoryview, int | None]]) -> list[str]:
        """Queue pieces, each with its codec mode (None: sampled in the pool thread)."""
        sink = [""] * len(parts)
        for i, (part, mode) in enumerate(parts):
            self.submit(part, mode, sink, i)
        return sink


#: index parts: (ids, hashes, segment, row); segment >= 0: new segment number,
#: < 0: -(parent segment + 1)
_Part = tuple[pa.Array, pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]


class ExportPass:
    """One export of the collection into new segments and index parts, against the
    parent's index (unchanged records are referenced where the parent stored them)."""

    def __init__(
        self,
        repo: Repository,
        config: CollectionConfig,
        base: Opened | None,
        segment_bytes: int,
    ) -> None:
        self.writer = BlobWriter(repo)
        self.before = dict(repo.stats)
        self.config, self.base = config, base
        self.segment_bytes = segment_bytes
        self.schema = segment_schema(config)
        #: the parent's index (unchanged records are referenced where it stored them)
        self.parent = ParentIndex(base.index) if base is not None else None
        self.export_s = 0.0
        self.reset()

    def reset(self) -> None:
        if self.parent is not None:
            self.parent.seen[:] = False
        self.out: list[_Part] = []
        self.new_segments: list[Segment] = []
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.added = self.changed = self.unchanged = 0

    @property
    def records(self) -> int:
        return sum(len(o[0]) for o in self.out)

    @property
    def deleted(self) -> int:
        return (len(self.parent) if self.parent else 0) - self.unchanged - self.changed

    def stats(self, carried: int) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "new_segments": len(self.new_segments),
            "carried_segments": carried,
        }

    def export(
        self,
        store: VectorStore,
        collection: str,
        batch_size: int,
        progress: Progress | None,
        retries: int,
    ) -> CutInfo:
        """Export (again while a count-check engine moved, up to ``retries`` times)."""
        for attempt in range(retries + 1):
            self.reset()
            stream = store.export(collection, batch_size=batch_size)
            t_export = time.perf_counter()
            for batch in stream:
                self.export_s += time.perf_counter() - t_export
                self.add(batch)
                if progress:
                    progress(len(batch))
                t_export = time.perf_counter()
            self.flush_segment()
            cut = stream.cut
            dupes = any_repeated([o[0] for o in self.out])
            if (cut.warning or dupes) and attempt < retries:
                log.warning(
                    "%s: exporting %r again (attempt %d of %d)",
                    cut.warning or "duplicate ids",
                    collection,
                    attempt + 2,
                    retries + 1,
                )
                continue
            if dupes:
                raise VectorStoreError(
                    f"the export of {collection!r} returned an id twice: the collection changed "
                    "during the export",
                    hint="pause writers and snapshot again",
                )
            return cut
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def add(self, batch: pa.RecordBatch) -> None:
        hashes = record_hash_rows(self.config, batch)
        if self.parent:
            fresh = self._carry(batch.column(ID), hashes)
        else:  # a full snapshot: every record is new
            fresh = list(range(len(batch)))
            self.added += len(batch)
        if not fresh:
            return
        part = batch if len(fresh) == len(batch) else batch.take(pa.array(fresh))
        sub = hashes if len(fresh) == len(batch) else hashes[fresh]
        part = pa.RecordBatch.from_arrays([*part.columns, hash_array(sub)], schema=self.schema)
        self.pending.append(part)
        self.pending_bytes += part.nbytes
        while self.pending_bytes >= self.segment_bytes:
            per_row = max(1, self.pending_bytes // sum(len(b) for b in self.pending))
            self.flush_segment(max(1, self.segment_bytes // per_row))

    def _carry(self, ids: pa.Array, hashes: np.ndarray[Any, Any]) -> list[int]:
        """Reference unchanged records where the parent has them; the others' rows."""
        parent = self.parent
        assert parent is not None
        pos, known, same = parent.meet(ids, hashes)
        n_known, n_same = int(known.sum()), int(same.sum())
        self.added += len(pos) - n_known
        self.changed += n_known - n_same
        if n_same:
            self.unchanged += n_same
            at = pos[same]
            keep = pa.array(same)
            self.out.append(
                (
                    ids.filter(keep),
                    hash_array(hashes).filter(keep),
                    (-(parent.segment[at] + 1)).astype(np.int32),
                    parent.row[at].astype(np.int32),
                )
            )
        return np.flatnonzero(~same).tolist()

    def flush_segment(self, rows: int | None = None) -> None:
        """Write the first ``rows`` pending rows (default all) as one segment."""
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending, schema=self.schema)
        rest = None
        if rows is not None and rows < len(table):
            table, rest = table.slice(0, rows), table.slice(rows)
        data = encode_arrow(table)
        content = self.writer.write_parts(segment_pieces(data, self.config))
        seg_no = len(self.new_segments)
        self.new_segments.append(Segment("", content, len(table), len(data)))
        n = len(table)
        self.out.append(
            (
                table.column(ID).combine_chunks(),
                table.column(HASH).combine_chunks(),
                np.full(n, seg_no, dtype=np.int32),
                np.arange(n, dtype=np.int32),
            )
        )
        self.pending = rest.to_batches() if rest is not None else []
        self.pending_bytes = rest.nbytes if rest is not None else 0
