"""The on-repository layout of a vector snapshot (docs/repository-format.md section 10).

A vector snapshot is an ordinary snapshot (``kind: "vectors"``) whose tree is::

    vectors.json               the manifest: format, config, segments, counts, cut, parent
    config.json                the collection config alone (CollectionConfig JSON)
    index.arrow                the live records: id, hash, segment, row; sorted by id
    segments/seg-HASH.arrow    record segments: canonical columns + ``_hash``

or, for an incremental snapshot whose index is a chain (instead of ``index.arrow``)::

    index/index-000.arrow      the full index of an ancestor (its blobs, not stored again)
    index/index-NNN.arrow      deltas, applied in name order: rows for the records added
                               or changed (segment >= 0), and deleted ids (segment -1)

in Arrow IPC file format, so ``drkit restore`` of it (as files) gives files that pyarrow
reads directly (``pyarrow.ipc.open_file``) and DuckDB through pyarrow. A
record's hash (:func:`record_hashes`) covers its id, vectors, payload and document. An
incremental snapshot carries the parent's segment nodes over unchanged (same blob ids,
nothing stored again) and writes only new or changed records into new segments; the new
index says which row of which segment is live, so deleted and superseded rows in old
segments are simply not referenced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import blake3
import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    PAYLOAD,
    CollectionConfig,
    arrow_schema,
)
from drkit.errors import CorruptObject
from drkit.repository.codec import MODE_ZSTD, SAMPLE, choose_mode

from . import native

FORMAT = "drkit-vectors/1"
HASH = "_hash"
HASH_BYTES = 16
#: A segment is written as one blob of about this many bytes (the repository packs it).
SEGMENT_BYTES = 4 << 20
#: Index and other large files are cut into blobs of this size.
PIECE_BYTES = 1 << 20
MANIFEST = "vectors.json"
CONFIG = "config.json"
INDEX = "index.arrow"
SEGMENTS = "segments"
#: the directory of an index chain (a full index, then deltas)
INDEX_CHAIN = "index"
#: a delta row with this segment deletes its id
DELETED = -1
#: an index chain holds at most this many deltas; then the next index is written in full
MAX_DELTAS = 16

INDEX_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string(), nullable=False),
        pa.field("hash", pa.binary(HASH_BYTES), nullable=False),
        pa.field("segment", pa.int32(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),
    ]
)


def segment_schema(config: CollectionConfig) -> pa.Schema:
    return arrow_schema(config).append(pa.field(HASH, pa.binary(HASH_BYTES), nullable=False))


def record_hashes(config: CollectionConfig, batch: pa.RecordBatch) -> list[bytes]:
    """:func:`record_hash_rows` as a list of ``bytes``."""
    rows = record_hash_rows(config, batch)
    hashes: list[bytes] = rows.view(f"V{HASH_BYTES}").ravel().tolist()
    return hashes


def hash_rows_of(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """A ``binary(16)`` column (a segment's ``_hash``, an index's ``hash``) as the rows of
    a ``(n, 16)`` uint8 matrix, without a Python object per hash."""
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks()
    if hashes.null_count:
        raise CorruptObject("a record hash is missing")
    data = hashes.buffers()[1]
    if data is None:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    flat = np.frombuffer(
        data, dtype=np.uint8, count=len(hashes) * HASH_BYTES, offset=hashes.offset * HASH_BYTES
    )
    return flat.reshape(-1, HASH_BYTES)


def hash_array(rows: np.ndarray[Any, Any]) -> pa.FixedSizeBinaryArray:
    """The rows of an ``(n, 16)`` hash matrix as a ``binary(16)`` Arrow array (no copy
    of a contiguous matrix)."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    buf = pa.py_buffer(rows)
    out: pa.FixedSizeBinaryArray = pa.Array.from_buffers(
        pa.binary(HASH_BYTES), len(rows), [None, buf]
    )
    return out


def record_hash_rows(config: CollectionConfig, batch: pa.RecordBatch) -> np.ndarray[Any, Any]:
    """BLAKE3-128 of each record, a row of an ``(n, 16)`` uint8 matrix, over: the
    u64-LE-length-prefixed UTF-8 id, the length-prefixed payload (canonical JSON), the
    document (0x00 if null, else 0x01 + length + UTF-8), then each vector's float32
    little-endian bytes in config order (fixed lengths, so no prefix).

    The id/payload/document prefixes of all records are laid out in one buffer with
    numpy (no Python object per record), and the vectors are hashed straight from the
    batch's Arrow buffer, by the batched hasher of :mod:`.native` where the install
    built it (5,000 x 768: 0.26 s/GB against 0.94 for a hasher per record, off the GIL),
    else one blake3-py hasher per record (its per-record Python work is one slice,
    hasher and digest; blake3-py releases the GIL only for inputs of ~16 KiB and more, so
    a helper thread only took turns with this one)."""
    n = len(batch)
    if n == 0:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    meta, starts = _metas(batch)
    flats = []
    for v in config.vectors:
        col = batch.column(v.column)
        flat = np.ascontiguousarray(col.flatten().to_numpy(zero_copy_only=False), dtype="<f4")
        flats.append((flat, v.dimension * 4))
    if native.available():
        return native.hash_records(meta, starts, flats, HASH_BYTES)
    views = [(flat.data.cast("B"), size) for flat, size in flats]
    hashes = _hash_rows(meta.data, starts.tolist(), views, 0, n)
    return np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(n, HASH_BYTES)


def _hash_rows(
    m: memoryview, st: list[int], views: list[tuple[memoryview, int]], lo: int, hi: int
) -> list[bytes]:
    new = blake3.blake3
    if len(views) == 1:
        vec, size = views[0]
        return [
            new(m[st[i] : st[i + 1]]).update(vec[i * size : (i + 1) * size]).digest(HASH_BYTES)
            for i in range(lo, hi)
        ]
    out = []
    for i in range(lo, hi):
        h = new(m[st[i] : st[i + 1]])
        for view, size in views:
            h.update(view[i * size : (i + 1) * size])
        out.append(h.digest(HASH_BYTES))
    return out


_EIGHT = np.arange(8, dtype=np.int64)


def _strings(arr: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(offsets as int64, data as uint8) of a string array; nulls read as ""."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count:
        arr = arr.fill_null("")
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    _, obuf, dbuf = arr.buffers()
    offs = np.frombuffer(obuf, dtype="<i4", count=len(arr) + 1, offset=arr.offset * 4)
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None else np.zeros(0, np.uint8)
    return offs.astype(np.int64), data


def _put_u64(out: np.ndarray[Any, Any], at: np.ndarray[Any, Any], values: Any) -> None:
    le = np.asarray(values, dtype="<u8").view(np.uint8).reshape(-1, 8)
    out[at[:, None] + _EIGHT] = le


def _put_bytes(out: np.ndarray[Any, Any], at: np.ndarray[Any, Any], offs: Any, data: Any) -> None:
    lengths = np.diff(offs)
    if not len(lengths) or offs[-1] == offs[0]:
        return
    dest = np.repeat(at - offs[:-1], lengths) + np.arange(offs[0], offs[-1])
    out[dest] = data[offs[0] : offs[-1]]


def _metas(batch: pa.RecordBatch) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every record's id/payload/document prefix, laid end to end, and where each starts."""
    ioffs, idata = _strings(batch.column(ID))
    poffs, pdata = _strings(batch.column(PAYLOAD))
    docs = batch.column(DOCUMENT)
    has = (
        np.ones(len(batch), dtype=bool)
        if not docs.null_count
        else docs.is_valid().to_numpy(zero_copy_only=False)
    )
    doffs, ddata = _strings(docs)
    ilen, plen, dlen = np.diff(ioffs), np.diff(poffs), np.diff(doffs)
    row = 17 + ilen + plen + has * (8 + dlen)
    starts = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(row, out=starts[1:])
    out = np.empty(int(starts[-1]), dtype=np.uint8)
    at = starts[:-1]
    _put_u64(out, at, ilen)
    _put_bytes(out, at + 8, ioffs, idata)
    at = at + 8 + ilen
    _put_u64(out, at, plen)
    _put_bytes(out, at + 8, poffs, pdata)
    at = at + 8 + plen
    out[at] = has
    at = at + 1
    if has.any():
        w = np.flatnonzero(has)
        _put_u64(out, at[w], dlen[w])
        _put_bytes(out, at + 8, doffs, ddata)  # null documents have no bytes
    return out, starts


def encode_arrow(table: pa.Table) -> memoryview:
    """Arrow IPC file bytes, uncompressed: the repository compresses (float-aware) and
    encrypts; IPC writes and reads without re-encoding (Parquet's nested-list encoding of
    vectors cost more than all the rest of the pipeline).

    Written twice: into a counting sink for the size, then into one exact numpy buffer.
    A growing Arrow buffer cost reallocations and fresh pages (Arrow's mimalloc pool
    returns freed memory to the kernel; numpy's malloc heap is reused)."""
    mock = pa.MockOutputStream()
    with pa.ipc.new_file(mock, table.schema) as writer:
        writer.write_table(table)
    out = np.empty(mock.size(), dtype=np.uint8)
    with pa.ipc.new_file(pa.FixedSizeBufferWriter(pa.py_buffer(out)), table.schema) as writer:
        writer.write_table(table)
    return out.data


def decode_arrow(data: bytes, what: str) -> pa.Table:
    try:
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptObject(f"{what} is not a valid Arrow IPC file: {exc}") from exc


@dataclass(slots=True)
class Segment:
    """One segment file: its tree node name, blob ids and row count."""

    name: str
    content: list[str]
    rows: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "content": self.content, "rows": self.rows, "size": self.size}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Segment:
        return cls(str(d["name"]), list(d["content"]), int(d["rows"]), int(d["size"]))


@dataclass(slots=True)
class Manifest:
    """``vectors.json``."""

    config: CollectionConfig
    collection: str
    source: str
    records: int
    segments: list[Segment]
    stats: dict[str, Any] = field(default_factory=dict)
    cut: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "collection": self.collection,
            "source": self.source,
            "config": self.config.to_json(),
            "records": self.records,
            "segments": [s.to_json() for s in self.segments],
            "stats": self.stats,
            "cut": self.cut,
            "parent": self.parent,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise CorruptObject(f"unknown vector snapshot format {doc.get('format')!r}")
            return cls(
                config=CollectionConfig.from_json(doc["config"]),
                collection=str(doc["collection"]),
                source=str(doc["source"]),
                records=int(doc["records"]),
                segments=[Segment.from_json(s) for s in doc["segments"]],
                stats=dict(doc.get("stats", {})),
                cut=dict(doc.get("cut", {})),
                parent=doc.get("parent"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptObject(f"malformed {MANIFEST}: {exc}") from exc


def pieces(data: bytes | memoryview, size: int = PIECE_BYTES) -> Sequence[bytes | memoryview]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def segment_pieces(
    data: memoryview, config: CollectionConfig
) -> list[tuple[bytes | memoryview, int | None]]:
    """Cut a segment's IPC bytes into blobs of at most :data:`PIECE_BYTES`, each with
    the codec mode for what it holds: the vector columns' float32 value buffers are cut
    apart from the rest (ids, payloads, documents, hashes, IPC metadata: zstd), and
    their mode is sampled once per segment instead of once per blob. The blobs still
    join into the same file (the layout does not change)."""
    buf = pa.py_buffer(data)
    base = buf.address
    regions: list[tuple[int, int]] = []
    reader = pa.ipc.open_file(buf)
    for i in range(reader.num_record_batches):
        rb = reader.get_batch(i)
        for v in config.vectors:
            values = rb.column(v.column).values.buffers()[1]
            if values is not None and values.size:
                regions.append((values.address - base, values.address - base + values.size))
    regions.sort()
    vec_mode: int | None = None
    out: list[tuple[bytes | memoryview, int | None]] = []

    def cut(lo: int, hi: int, mode: int | None) -> None:
        out.extend((data[i : min(hi, i + PIECE_BYTES)], mode) for i in range(lo, hi, PIECE_BYTES))

    at = 0
    for lo, hi in regions:
        if lo < at or hi > len(data):
            return [(p, None) for p in pieces(data)]  # not laid out as expected: sample all
        if vec_mode is None:
            vec_mode = choose_mode(data[lo : min(hi, lo + SAMPLE)])
        cut(at, lo, MODE_ZSTD)
        cut(lo, hi, vec_mode)
        at = hi
    cut(at, len(data), MODE_ZSTD)
    return out
