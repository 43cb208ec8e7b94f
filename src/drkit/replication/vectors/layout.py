"""The on-repository layout of a vector snapshot (docs/repository-format.md section 10).

A vector snapshot is an ordinary snapshot (``kind: "vectors"``) whose tree is::

    vectors.json               the manifest: format, config, segments, counts, cut, parent
    config.json                the collection config alone (CollectionConfig JSON)
    index.arrow                the live records: id, hash, segment, row; sorted by id
    segments/seg-HASH.arrow    record segments: canonical columns + ``_hash``

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
import struct
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
    """BLAKE3-128 of each record over: the u64-LE-length-prefixed UTF-8 id, the
    length-prefixed payload (canonical JSON), the document (0x00 if null, else 0x01 +
    length + UTF-8), then each vector's float32 little-endian bytes in config order
    (fixed lengths, so no prefix)."""
    ids = batch.column(ID).to_pylist()
    payloads = batch.column(PAYLOAD).to_pylist()
    docs = batch.column(DOCUMENT).to_pylist()
    views = []
    for v in config.vectors:
        col = batch.column(v.column)
        flat = np.ascontiguousarray(col.flatten().to_numpy(zero_copy_only=False), dtype="<f4")
        views.append((memoryview(flat.tobytes()), v.dimension * 4))
    pack = struct.Struct("<Q").pack
    new = blake3.blake3
    out = []
    for i, rid in enumerate(ids):
        b = rid.encode()
        p = payloads[i].encode()
        d = docs[i]
        if d is None:
            meta = b"".join((pack(len(b)), b, pack(len(p)), p, b"\x00"))
        else:
            db = d.encode()
            meta = b"".join((pack(len(b)), b, pack(len(p)), p, b"\x01", pack(len(db)), db))
        h = new(meta)
        for view, size in views:
            h.update(view[i * size : (i + 1) * size])
        out.append(h.digest(HASH_BYTES))
    return out


def encode_arrow(table: pa.Table) -> memoryview:
    """Arrow IPC file bytes, uncompressed: the repository compresses (float-aware) and
    encrypts; IPC writes and reads without re-encoding (Parquet's nested-list encoding of
    vectors cost more than all the rest of the pipeline)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return memoryview(sink.getvalue())


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
