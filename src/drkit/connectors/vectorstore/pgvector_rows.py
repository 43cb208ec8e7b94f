"""pgvector: table rows to canonical batches and back, and loading them.

Export reads every column as text or arrays through one ``SELECT`` (:func:`select`) and
builds canonical batches (:func:`to_batch`): the ``payload`` column and the other
columns folded in by name make the payload, and each ``sparsevec`` column a sparse
vector in it (:mod:`.pgvector_sparse`). Import splits each record the other way
(:func:`to_rows`) and loads the rows with ``COPY`` (:func:`load_rows`).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    PAYLOAD,
    SPARSE_KEY,
    CollectionConfig,
    make_batch,
    vectors_of,
)
from drkit.connectors.vectorstore.pgvector_layout import Layout
from drkit.connectors.vectorstore.pgvector_sparse import from_text, to_text
from drkit.errors import IncompatibleTarget


def select(lay: Layout, table: Any) -> Any:
    """The export's query: id as text, the vectors as ``real[]``, the payload column,
    the other columns as one jsonb object, the document, the sparse vectors as text."""
    from psycopg import sql

    fields: list[sql.Composable] = [sql.SQL("{}::text").format(sql.Identifier(lay.pk))]
    fields += [sql.SQL("{}::real[]").format(sql.Identifier(c)) for c in lay.vcols]
    fields.append(sql.Identifier(PAYLOAD) if lay.has_payload else sql.SQL("NULL::jsonb"))
    if lay.extra:
        fields.append(
            sql.SQL("jsonb_build_object({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c)) for c in lay.extra
                )
            )
        )
    else:
        fields.append(sql.SQL("NULL::jsonb"))
    fields.append(sql.Identifier(DOCUMENT) if lay.has_document else sql.SQL("NULL::text"))
    fields += [sql.SQL("{}::text").format(sql.Identifier(c)) for c, _ in lay.sparse]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), table)


def to_batch(config: CollectionConfig, lay: Layout, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    """Rows of :func:`select` as one canonical batch."""
    nv = len(config.vectors)
    ids = [r[0] for r in rows]
    vecs = {v.name: [r[1 + i] for r in rows] for i, v in enumerate(config.vectors)}
    payloads = []
    for r in rows:
        payload = dict(r[1 + nv] or {})
        payload.update(r[2 + nv] or {})
        for j, (col, dim) in enumerate(lay.sparse):
            text = r[4 + nv + j]
            if text is not None:
                payload[SPARSE_KEY + col] = from_text(text, with_dimension=dim is None)
        payloads.append(payload)
    docs = [r[3 + nv] for r in rows]
    return make_batch(config, ids, vecs, payloads, docs)


def to_rows(
    config: CollectionConfig, batch: pa.RecordBatch, lay: Layout, name: str
) -> list[tuple[Any, ...]]:
    """A canonical batch as rows of ``lay.columns()``: payload keys that are columns go
    to them, the rest into ``payload``. Raises :class:`IncompatibleTarget` (nothing
    written) for documents or payload keys the table has no column for."""
    from psycopg.types.json import Jsonb

    ids = batch.column(ID).to_pylist()
    vec_text = []
    for v in config.vectors:
        mat = vectors_of(batch, v.column)
        # repr of the float64 of a float32 parses back to the same float32 (strtof)
        vec_text.append(["[" + ",".join(map(repr, row)) + "]" for row in mat.tolist()])
    payloads = [json.loads(p) for p in batch.column(PAYLOAD).to_pylist()]
    docs = batch.column(DOCUMENT).to_pylist()
    is_json = [lay.payload_schema[c] in ("json", "jsonb") for c in lay.extra]
    if not lay.has_document and any(d is not None for d in docs):
        raise IncompatibleTarget(f"table {name!r} has no document column for the documents")
    out = []
    for i, rid in enumerate(ids):
        p = payloads[i]
        cells = [p.pop(c, None) for c in lay.extra]
        cells = [
            Jsonb(v) if j and v is not None else v for v, j in zip(cells, is_json, strict=True)
        ]
        sparse = [_sparse_cell(config, p, col, dim, rid) for col, dim in lay.sparse]
        if not lay.has_payload and p:
            raise IncompatibleTarget(
                f"table {name!r} has no column for payload keys {sorted(p)[:5]}",
                hint="restore into a new table with --collection",
            )
        row: list[Any] = [rid, *(vt[i] for vt in vec_text)]
        row += [Jsonb(p)] if lay.has_payload else []
        row += [docs[i]] if lay.has_document else []
        out.append((*row, *cells, *sparse))
    return out


def _sparse_cell(
    config: CollectionConfig, payload: dict[str, Any], col: str, dim: int | None, rid: str
) -> str | None:
    """The text for sparsevec column ``col`` out of a record's payload (``None``: none).
    A pgvector snapshot taken before sparse vectors were carried has the column's text
    in the payload under the column's name: it goes back into the column as it was."""
    sv = payload.pop(SPARSE_KEY + col, None)
    if sv is not None:
        return to_text(sv, dim, rid, col)
    if config.engine == "pgvector" and isinstance(payload.get(col), str):
        return str(payload.pop(col))
    return None


def load_rows(
    conn: Any, table: Any, lay: Layout, rows: list[tuple[Any, ...]], *, fresh: bool
) -> None:
    """Write ``rows`` (of ``lay.columns()``, no id twice) in one transaction: ``COPY``
    straight into the table when ``fresh`` (none of their ids is in it); otherwise
    ``COPY`` into a temporary table and ``INSERT ... ON CONFLICT DO UPDATE`` (a record
    whose id exists is replaced)."""
    from psycopg import sql

    names = [sql.Identifier(c) for c in lay.columns()]
    col_list = sql.SQL(", ").join(names)
    with conn.transaction():
        if fresh:  # no conflicts (a restore's new table): COPY straight in
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(table, col_list)
            with conn.cursor().copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        tmp = sql.Identifier("drkit_import")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} LIMIT 0").format(
                tmp, col_list, table
            )
        )
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(tmp, col_list)
        with conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names[1:])
        conn.execute(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
            ).format(table, col_list, col_list, tmp, sql.Identifier(lay.pk), updates)
        )
