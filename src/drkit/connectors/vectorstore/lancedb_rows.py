"""LanceDB rows <-> canonical batches: the table's own columns, payload keys folded in.

Split from :mod:`.lancedb` (the connector): a table drkit did not create may keep
payload keys in columns of their own, which export folds into the canonical payload and
import splits back out.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.base import DOCUMENT, ID, PAYLOAD, canonical_json
from drkit.errors import IncompatibleTarget


def canonical_rows(raw: pa.RecordBatch, lay: dict[str, Any], target: pa.Schema) -> pa.RecordBatch:
    """Rows of the table (its ``lay``-out) as canonical records of schema ``target``."""
    n = len(raw)
    cols: list[pa.Array] = [raw.column(ID).cast(pa.string())]
    for col, field in zip(lay["vcols"], target.types[1 : 1 + len(lay["vcols"])], strict=True):
        cols.append(raw.column(col).cast(field))
    if lay["extra"] or not lay["has_payload"]:
        base = raw.column(PAYLOAD).to_pylist() if lay["has_payload"] else [None] * n
        extras = {c: raw.column(c).to_pylist() for c in lay["extra"]}
        payloads = []
        for i in range(n):
            raw_payload = base[i]
            p = json.loads(raw_payload) if raw_payload else {}
            # a null cell is an absent key (import writes an absent key as null)
            p.update({c: _jsonable(v[i]) for c, v in extras.items() if v[i] is not None})
            payloads.append(canonical_json(p))
        cols.append(pa.array(payloads, pa.string()))
    else:
        cols.append(raw.column(PAYLOAD).cast(pa.string()).fill_null("{}"))
    if lay["has_document"]:
        cols.append(raw.column(DOCUMENT).cast(pa.string()))
    else:
        cols.append(pa.nulls(n, pa.string()))
    return pa.RecordBatch.from_arrays(cols, schema=target)


def table_rows(
    batch: pa.RecordBatch | pa.Table, lay: dict[str, Any], schema: pa.Schema, name: str
) -> pa.Table:
    """Canonical rows in the table's own columns: payload keys that are columns go
    there (absent -> null), the rest into ``payload``; refused if nothing holds them."""
    if lay["has_payload"] and not lay["extra"]:
        payloads: list[dict[str, Any]] = []  # the canonical JSON goes in as it is
    else:
        payloads = [json.loads(p) for p in batch.column(PAYLOAD).to_pylist()]
    extras = {c: [p.pop(c, None) for p in payloads] for c in lay["extra"]}
    if not lay["has_payload"]:
        left = sorted({k for p in payloads for k in p})
        if left:
            raise IncompatibleTarget(
                f"lancedb table {name!r} has no column for payload keys {left[:5]}",
                hint="restore into a new table with --collection",
            )
    if not lay["has_document"] and batch.column(DOCUMENT).null_count < len(batch):
        raise IncompatibleTarget(f"lancedb table {name!r} has no document column")
    vcols = lay["vcols"]
    canonical_vectors = dict(zip(vcols, batch.columns[1 : 1 + len(vcols)], strict=True))
    cols: list[pa.Array | pa.ChunkedArray] = []
    for f in schema:
        if f.name == ID:
            values: Any = batch.column(ID)
        elif f.name in canonical_vectors:
            values = canonical_vectors[f.name]
        elif f.name == PAYLOAD and not lay["extra"]:
            values = batch.column(PAYLOAD)
        elif f.name == PAYLOAD:
            values = pa.array([canonical_json(p) for p in payloads], pa.string())
        elif f.name == DOCUMENT:
            values = batch.column(DOCUMENT)
        else:
            values = extras[f.name]
        cols.append(_to_arrow(values, f, name))
    return pa.Table.from_arrays(cols, schema=schema)


def _to_arrow(values: Any, f: pa.Field, table: str) -> pa.Array | pa.ChunkedArray:
    """``values`` (an Arrow array or a list of JSON values) as a column of ``f``'s type."""
    try:
        if isinstance(values, pa.Array | pa.ChunkedArray):
            return values if values.type == f.type else values.cast(f.type)
        try:
            return pa.array(values, type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            return pa.array(values).cast(f.type)  # ISO text -> timestamp, ...
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        raise IncompatibleTarget(
            f"lancedb table {table!r}: column {f.name!r} ({f.type}) cannot hold the "
            f"restored values: {exc}",
            hint="restore into a new table with --collection",
        ) from exc


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):  # datetime, date, time: ISO text casts back
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
