"""pgvector: how a table is a collection, read from the catalog (:func:`read_layout`).

The primary key is the id, each ``vector(n)`` column a dense vector (``embedding`` the
default one, any other column a named vector of its name), each ``sparsevec`` column a
sparse vector of its name (:mod:`.pgvector_sparse`), a ``text`` column called
``document`` the document, a ``jsonb`` column called ``payload`` the payload, and any
other column a payload key of its name. A vector's metric comes from its index operator
class, else from the column comment ``drkit:metric=<metric>``, else ``l2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drkit.connectors.vectorstore.base import DOCUMENT, PAYLOAD, Metric, VectorField, not_found
from drkit.connectors.vectorstore.pgvector_sparse import column_dimension
from drkit.errors import IncompatibleTarget

#: the column of the default (unnamed) vector
DEFAULT_COLUMN = "embedding"
OPS = {
    "vector_cosine_ops": Metric.COSINE,
    "vector_ip_ops": Metric.DOT,
    "vector_l2_ops": Metric.L2,
}
OPCLASS = {m: op for op, m in OPS.items()}
#: the tables of a schema that are collections (at least one ``vector(n)`` column)
LIST_SQL = """
    SELECT DISTINCT c.relname FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      AND format_type(a.atttypid, a.atttypmod) LIKE 'vector(%%'
    ORDER BY 1"""


@dataclass(frozen=True, slots=True)
class Layout:
    """Which column of a table holds what (see the module docstring)."""

    pk: str
    pk_type: str
    vectors: tuple[VectorField, ...]
    #: the dense vector columns, in the order of ``vectors``
    vcols: tuple[str, ...]
    #: the other columns that are payload keys, with their types
    payload_schema: dict[str, str]
    #: the names of ``payload_schema``, in column order
    extra: tuple[str, ...]
    has_payload: bool
    has_document: bool
    #: the ``sparsevec`` columns (sparse vectors of their names) with their dimension
    #: (``None``: untyped, each row its own; see :mod:`.pgvector_sparse`)
    sparse: tuple[tuple[str, int | None], ...] = ()

    def columns(self) -> list[str]:
        """The columns a row of :func:`.pgvector_rows.to_rows` fills, in its order."""
        cols = [self.pk, *self.vcols]
        cols += [PAYLOAD] if self.has_payload else []
        cols += [DOCUMENT] if self.has_document else []
        return cols + list(self.extra) + [c for c, _ in self.sparse]

    def sparse_options(self) -> dict[str, Any]:
        """``options["sparse_vectors"]`` of the collection: each with its dimension."""
        return {c: {"dimension": d} if d else {} for c, d in self.sparse}


def read_layout(conn: Any, schema: str, name: str, url: str) -> Layout:
    """The layout of table ``schema.name``. Raises :class:`CollectionNotFound` (no such
    table, or no vector column) and :class:`IncompatibleTarget` (no single-column
    primary key)."""
    cols = _columns(conn, schema, name, url)
    indexes = _index_info(conn, schema, name)
    pk = [c for c in cols if c[3]]
    if len(pk) != 1:
        raise IncompatibleTarget(
            f"table {name!r} needs a single-column primary key to be a collection"
        )
    vectors: list[VectorField] = []
    vcols: list[str] = []
    payload_schema: dict[str, str] = {}
    sparse: list[tuple[str, int | None]] = []
    has_payload = False
    for col, typ, comment, is_pk in cols:
        if is_pk:
            continue
        is_sparse, dim = column_dimension(typ)
        if is_sparse:
            sparse.append((col, dim))
            continue
        if typ.startswith("vector("):
            metric = Metric.L2
            index: dict[str, Any] = {}
            if col in indexes:
                metric = OPS[indexes[col][0]]
                index = {"definition": indexes[col][1]}
            elif comment and comment.startswith("drkit:metric="):
                metric = Metric(comment.split("=", 1)[1])
            vname = "" if col == DEFAULT_COLUMN else col
            vectors.append(VectorField(vname, int(typ[7:-1]), metric, index))
            vcols.append(col)
        elif col == DOCUMENT and typ == "text":
            continue
        elif col == PAYLOAD and typ == "jsonb":
            has_payload = True
        else:
            payload_schema[col] = typ
    if not vectors:
        raise not_found(name, url)
    return Layout(
        pk=pk[0][0],
        pk_type=pk[0][1],
        vectors=tuple(vectors),
        vcols=tuple(vcols),
        payload_schema=payload_schema,
        extra=tuple(payload_schema),
        has_payload=has_payload,
        has_document=any(c[0] == DOCUMENT and c[1] == "text" for c in cols),
        sparse=tuple(sparse),
    )


Column = tuple[str, str, str | None, bool]


def _columns(conn: Any, schema: str, name: str, url: str) -> list[Column]:
    """(column, type, comment, is_primary_key) in column order."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               col_description(c.oid, a.attnum),
               COALESCE(a.attnum = ANY(i.indkey), false)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid
        LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""",
        [schema, name],
    ).fetchall()
    if not rows:
        raise not_found(name, url)
    return [(r[0], r[1], r[2], bool(r[3])) for r in rows]


def _index_info(conn: Any, schema: str, name: str) -> dict[str, tuple[str, str]]:
    """vector column -> (opclass, index definition)."""
    rows = conn.execute(
        """
        SELECT a.attname, op.opcname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
        JOIN pg_opclass op ON op.oid = i.indclass[0]
        WHERE n.nspname = %s AND c.relname = %s""",
        [schema, name],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows if r[1] in OPS}
