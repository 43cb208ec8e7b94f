"""Milvus: entities to canonical batches and back (see :mod:`.milvus` for the mapping).

A payload key that collides with a schema field is kept as the dynamic field
``__drkit_key_<key>``; a sparse vector travels in the canonical payload as
``__drkit_sparse.NAME``; a record's partition as ``__drkit_partition``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    SPARSE_KEY,
    CollectionConfig,
    VectorField,
    make_batch,
    payloads_of,
    vectors_of,
)
from drkit.errors import IncompatibleTarget

ID_MAX = 1024
DOC_MAX = 65535
#: payload keys that collide with a schema field are stored under this prefix
KEY_ESCAPE = "__drkit_key_"
#: the payload key that carries a record's partition (see :mod:`.milvus`)
PARTITION_KEY = "__drkit_partition"
DEFAULT_PARTITION = "_default"


@dataclass(frozen=True, slots=True)
class Layout:
    """Which field of a collection holds what."""

    pk: str
    pk_int: bool
    #: the collection's own partitions records are routed to (none when a partition
    #: key places them)
    partitions: tuple[str, ...]
    vectors: tuple[VectorField, ...]
    #: the FLOAT_VECTOR fields, in the order of ``vectors``
    vfields: tuple[str, ...]
    #: SPARSE_FLOAT_VECTOR fields (``__drkit_sparse.NAME`` in the canonical payload)
    sparse: tuple[str, ...]
    payload_schema: dict[str, str]
    has_document: bool
    dynamic: bool


def to_batch(config: CollectionConfig, lay: Layout, rows: list[Any]) -> pa.RecordBatch:
    """Entities (``query_iterator`` rows) as one canonical batch."""
    skip = {lay.pk, *lay.vfields, *lay.sparse}
    if lay.has_document:
        skip.add(DOCUMENT)
    ids = [str(r[lay.pk]) for r in rows]
    vecs = {v.name: [r[f] for r in rows] for v, f in zip(config.vectors, lay.vfields, strict=True)}
    payloads = [
        {k.removeprefix(KEY_ESCAPE): v for k, v in dict(r).items() if k not in skip} for r in rows
    ]
    for r, payload in zip(rows, payloads, strict=True):
        for sname in lay.sparse:
            sv = sparse_of(r.get(sname))
            if sv:
                keys = sorted(sv)
                payload[SPARSE_KEY + sname] = {
                    "indices": keys,
                    "values": [float(sv[i]) for i in keys],
                }
    docs = [r.get(DOCUMENT) for r in rows] if lay.has_document else None
    return make_batch(config, ids, vecs, payloads, docs)


def to_rows(
    config: CollectionConfig, lay: Layout, batch: pa.RecordBatch
) -> tuple[list[dict[str, Any]], list[str]]:
    """A canonical batch as entities, and the partition each goes into ("" = the
    default). Raises :class:`IncompatibleTarget` (nothing written) for a document over
    ``DOC_MAX`` bytes or a record without a sparse vector the collection has."""
    reserved = {lay.pk, *lay.vfields, *lay.sparse, DOCUMENT, "$meta"}
    partitions = set(lay.partitions)
    vecs = {v.name: vectors_of(batch, v.column) for v in config.vectors}
    ids = batch.column(ID).to_pylist()
    docs = batch.column(DOCUMENT).to_pylist()
    rows = []
    into: list[str] = []
    for i, payload in enumerate(payloads_of(batch)):
        sparse = {n: payload.pop(SPARSE_KEY + n, None) for n in lay.sparse}
        part = payload.get(PARTITION_KEY)
        if isinstance(part, str) and part in partitions:
            del payload[PARTITION_KEY]
        else:
            part = ""
        into.append(part)
        if docs[i] is not None and len(docs[i].encode()) > DOC_MAX:
            raise IncompatibleTarget(f"document of {ids[i]!r} exceeds {DOC_MAX} bytes")
        # a key that collides with a schema field is kept under an escaped name
        row = {KEY_ESCAPE + k if k in reserved else k: v for k, v in payload.items()}
        row[lay.pk] = int(ids[i]) if lay.pk_int else ids[i]
        for sname, sv in sparse.items():
            pairs = zip(sv["indices"], sv["values"], strict=True) if sv else ()
            row[sname] = {int(k): float(x) for k, x in pairs}
            if not any(row[sname].values()):  # Milvus: no empty sparse vector
                raise IncompatibleTarget(
                    f"record {ids[i]!r} has no sparse vector {sname!r}: a Milvus "
                    "sparse field needs one for every record",
                    hint="restore into Qdrant, or into another engine, where "
                    "sparse vectors may be missing",
                )
        for v, f in zip(config.vectors, lay.vfields, strict=True):
            row[f] = vecs[v.name][i].tolist()
        if lay.has_document:
            row[DOCUMENT] = docs[i]
        rows.append(row)
    return rows, into


def in_filter(field: str, keys: Sequence[Any]) -> str:
    """A ``field in [...]`` filter with properly quoted strings. pymilvus's
    ``delete(ids=...)`` pastes strings between single quotes unescaped, so an id with a
    quote breaks (or changes) the expression."""
    return f"{field} in [{', '.join(json.dumps(k, ensure_ascii=False) for k in keys)}]"


def sparse_of(value: Any) -> dict[int, float]:
    """A sparse vector as Milvus gives it back ({index: value}, or a 1-row CSR matrix)."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    coo = value.tocoo()  # scipy sparse
    return {int(c): float(v) for c, v in zip(coo.col, coo.data, strict=True)}
