"""The canonical record format: Arrow record batches every vector-store connector speaks.

See :mod:`drkit.connectors.vectorstore.base` for the schema (column order and types) and
the :class:`~drkit.connectors.vectorstore.base.VectorStore` interface that uses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from drkit.errors import IncompatibleTarget

if TYPE_CHECKING:
    from drkit.connectors.vectorstore.collection import CollectionConfig

ID = "id"
VECTOR = "vector"
PAYLOAD = "payload"
DOCUMENT = "document"
#: A sparse vector NAME in the canonical payload: ``{"indices": [...], "values": [...]}``
#: (0-based ``int`` indices, ascending, each with its value), named in the collection's
#: ``options["sparse_vectors"]``; engines with sparse vectors (Qdrant, Milvus, pgvector)
#: make it theirs again.
SPARSE_KEY = "__drkit_sparse."


def vector_column(name: str) -> str:
    return VECTOR if name == "" else f"{VECTOR}.{name}"


def arrow_schema(config: CollectionConfig) -> pa.Schema:
    """The canonical Arrow schema of ``config``'s records."""
    fields = [pa.field(ID, pa.string(), nullable=False)]
    for v in config.vectors:
        fields.append(pa.field(v.column, pa.list_(pa.float32(), v.dimension), nullable=False))
    fields.append(pa.field(PAYLOAD, pa.string(), nullable=False))
    fields.append(pa.field(DOCUMENT, pa.string(), nullable=True))
    return pa.schema(fields)


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, UTF-8, NaN/Infinity refused."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        raise IncompatibleTarget(f"payload is not representable as JSON: {exc}") from exc


def make_batch(
    config: CollectionConfig,
    ids: Sequence[str],
    vectors: Mapping[str, Any],
    payloads: Sequence[Mapping[str, Any] | None],
    documents: Sequence[str | None] | None = None,
) -> pa.RecordBatch:
    """Build a canonical batch. ``vectors`` maps vector name -> (n, dim) array-like."""
    n = len(ids)
    arrays: list[pa.Array] = [pa.array([str(i) for i in ids], type=pa.string())]
    for v in config.vectors:
        mat = np.asarray(vectors[v.name], dtype=np.float32).reshape(n, v.dimension)
        arrays.append(
            pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1), pa.float32()), v.dimension)
        )
    arrays.append(pa.array([canonical_json(dict(p or {})) for p in payloads], type=pa.string()))
    docs = list(documents) if documents is not None else [None] * n
    arrays.append(pa.array(docs, type=pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(config))


def vectors_of(batch: pa.RecordBatch, column: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The (n, dim) float32 matrix of a vector column (no copy where possible)."""
    col = batch.column(column)
    dim = col.type.list_size
    values = col.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(batch), dim)


def payloads_of(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    return [json.loads(p) for p in batch.column(PAYLOAD).to_pylist()]


def conform(config: CollectionConfig, batch: pa.RecordBatch, target: str) -> pa.RecordBatch:
    """Check ``batch`` (:func:`check_batch`) and return it in exactly the canonical schema."""
    check_batch(config, batch, target)
    schema = arrow_schema(config)
    cols = [batch.column(f.name) for f in schema]
    cols = [c if c.type == f.type else c.cast(f.type) for c, f in zip(cols, schema, strict=True)]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def check_batch(config: CollectionConfig, batch: pa.RecordBatch, target: str) -> None:
    """Raise :class:`IncompatibleTarget` unless ``batch`` fits ``config``'s schema."""
    expected = arrow_schema(config)
    got = {f.name: f.type for f in batch.schema}
    for f in expected:
        if f.name not in got:
            raise IncompatibleTarget(f"records for {target!r} lack column {f.name!r}")
        if not _same_type(got[f.name], f.type):
            raise IncompatibleTarget(
                f"records for {target!r}: column {f.name!r} is {got[f.name]}, expected {f.type}"
            )
    if batch.column(ID).null_count:
        raise IncompatibleTarget(f"records for {target!r} have null ids")


def normalise(vectors: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit-length rows (zero rows stay zero), the way cosine-normalising engines store."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: np.ndarray[Any, np.dtype[np.float32]] = (vectors / norms).astype(np.float32)
    return out


def check_flat_payload(payload: Mapping[str, Any], engine: str) -> None:
    """Refuse payloads an engine with flat metadata cannot hold: scalars (str, int,
    float, bool) and non-empty lists of one scalar type pass (Chroma 1.x stores those);
    nested objects, nested or mixed or empty lists, and null are refused."""
    for key, value in payload.items():
        if isinstance(value, list) and _flat_list(value):
            continue
        if value is None or isinstance(value, dict | list):
            what = "null" if value is None else type(value).__name__
            if isinstance(value, list):
                what = "an empty list" if not value else "a list of mixed or nested values"
            raise IncompatibleTarget(
                f"{engine} keeps flat metadata only; payload key {key!r} holds {what}",
                hint="restore into an engine with JSON payloads (Qdrant, pgvector, Milvus)",
            )
        _check_finite(key, value)


def _flat_list(values: list[Any]) -> bool:
    """A non-empty list of one scalar type (bool is not an int here)."""
    if not values:
        return False
    kind = type(values[0])
    if kind not in (str, int, float, bool) or any(type(v) is not kind for v in values):
        return False
    for v in values:
        _check_finite("list element", v)
    return True


def _check_finite(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise IncompatibleTarget(f"payload key {key!r} is not a finite number")


def _same_type(got: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_fixed_size_list(expected):
        return bool(
            pa.types.is_fixed_size_list(got)
            and got.list_size == expected.list_size
            and got.value_type == pa.float32()
        )
    return bool(got == expected)
