"""pgvector: a table's own DDL, recorded at export and rebuilt by a same-engine restore.

:func:`table_ddl` reads what the application declared — columns in order with their
types, ``NOT NULL`` and ``DEFAULT``, column and table comments, the primary key, and
every secondary index (HNSW with its ``m``/``ef_construction``, btree, GIN, ...) by name
— into plain JSON data kept in the collection config (``options["ddl"]``).

A restore creates the table from it **without** the secondary indexes and leaves them
in the table comment (``drkit:pending-indexes=...``); :func:`build_pending` creates
them once the records are in, because ``COPY`` into an indexed table is several times
slower than ``COPY`` then ``CREATE INDEX`` (pgvector builds an HNSW graph far faster
in bulk). A recorded index name is kept where it is free in the schema; otherwise
PostgreSQL picks one from the table name, and rename carries it to the final name.
A config from another engine gets drkit's own layout (:func:`create_table`).

CHECK constraints and foreign keys are recorded by name with their definitions and
added after the load too (a CHECK validates the rows once; a foreign key is added
``NOT VALID`` — it holds for new writes without requiring the referenced rows, which
are not part of the snapshot — and only where the referenced table exists in the
target; otherwise it is skipped with a warning).

Not carried (reported in ``docs/vector-stores.md``): defaults that call a sequence
(``serial``; the sequence is not part of the snapshot), types the target database does
not have (an enum of the source database), and foreign keys of other tables that
reference this one.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from drkit.connectors.vectorstore.base import CollectionConfig
from drkit.connectors.vectorstore.pgvector_layout import DEFAULT_COLUMN, OPCLASS
from drkit.connectors.vectorstore.pgvector_sparse import dimension_for

log = logging.getLogger("drkit.vectorstore")

PENDING = "drkit:pending-indexes="
_INDEXDEF = re.compile(r"CREATE (UNIQUE )?INDEX (\S+) ON (?:ONLY )?(\S+) (USING .*)\Z", re.S)


def table_ddl(conn: Any, schema: str, name: str) -> dict[str, Any]:
    """The table's declared shape as JSON data (see the module docstring)."""
    cols = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum),
               a.attidentity <> '' OR a.attgenerated <> ''
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""",
        [schema, name],
    ).fetchall()
    rows = conn.execute(
        """
        SELECT ci.relname, pg_get_indexdef(i.indexrelid), i.indisprimary,
               obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_index i ON i.indrelid = c.oid
        LEFT JOIN pg_class ci ON ci.oid = i.indexrelid
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'
        ORDER BY ci.relname""",
        [schema, name],
    ).fetchall()
    indexes = []
    comment = None
    for iname, idef, primary, tcomment in rows:
        comment = tcomment
        m = _INDEXDEF.match(idef or "")
        if iname is None or primary or m is None:
            continue
        indexes.append({"name": iname, "unique": bool(m.group(1)), "using": m.group(4)})
    if comment and comment.startswith(PENDING):  # a restore that did not finish
        comment = json.loads(comment[len(PENDING) :]).get("comment")
    columns = []
    for cname, ctype, not_null, default, ccomment, generated in cols:
        if generated or (default and "nextval(" in default):
            default = None  # identity/serial/generated: no sequence in the snapshot
        columns.append(
            {
                "name": cname,
                "type": ctype,
                "not_null": bool(not_null),
                "default": default,
                "comment": ccomment,
            }
        )
    rows = conn.execute(
        """
        SELECT con.conname, con.contype, pg_get_constraintdef(con.oid), rn.nspname, rc.relname
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class rc ON rc.oid = con.confrelid
        LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND con.contype IN ('c', 'f')
        ORDER BY con.conname""",
        [schema, name],
    ).fetchall()
    constraints = [
        {
            "name": cname,
            "kind": "check" if kind == "c" else "foreign_key",
            "def": cdef,
            # the referenced table (foreign keys): added only where it exists
            "references": [rschema, rtable] if kind == "f" else None,
        }
        for cname, kind, cdef, rschema, rtable in rows
    ]
    return {"columns": columns, "indexes": indexes, "comment": comment, "constraints": constraints}


def recorded_ddl(config: CollectionConfig) -> tuple[dict[str, Any], str] | None:
    """The source table's DDL and primary key, if recorded by pgvector and its vector
    columns are still the config's (a mapping may have renamed them)."""
    ddl = config.options.get("ddl") if config.engine == "pgvector" else None
    pk = config.options.get("id_column")
    if not isinstance(ddl, dict) or not isinstance(pk, str):
        return None
    types = {c["name"]: c["type"] for c in ddl.get("columns", [])}
    vcols = {c for c, t in types.items() if t.startswith("vector(")}
    wanted = {v.name or DEFAULT_COLUMN: f"vector({v.dimension})" for v in config.vectors}
    if vcols != set(wanted) or any(types[c] != t for c, t in wanted.items()) or pk not in types:
        return None
    return ddl, pk


def create_table(conn: Any, schema: str, name: str, config: CollectionConfig) -> None:
    """Create the bare table for ``config``: the recorded DDL (:func:`recorded_ddl`), or
    drkit's layout (``id text``, one ``vector(n)`` column per vector with a
    ``drkit:metric`` comment, ``payload jsonb``, ``document text``, one ``sparsevec(DIM)``
    column per sparse vector: :mod:`.pgvector_sparse`). Its secondary
    indexes (drkit's layout: one HNSW per vector column) wait in the table comment
    until the first import has loaded the records (:func:`build_pending`)."""
    from psycopg import sql

    table = sql.Identifier(schema, name)
    recorded = recorded_ddl(config)
    comments: list[tuple[str, str]] = []
    if recorded is not None:
        ddl, pk = recorded
        cols: list[sql.Composable] = []
        for c in ddl["columns"]:
            parts = [sql.Identifier(c["name"]), sql.SQL(c["type"])]
            if c["not_null"] and c["name"] != pk:
                parts.append(sql.SQL("NOT NULL"))
            if c["default"]:
                parts.append(sql.SQL("DEFAULT " + c["default"]))
            cols.append(sql.SQL(" ").join(parts))
            if c["comment"]:
                comments.append((c["name"], c["comment"]))
        cols.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(pk)))
        pending: list[dict[str, Any]] = list(ddl["indexes"])
        constraints: list[dict[str, Any]] = list(ddl.get("constraints", []))
        table_comment = ddl.get("comment")
    else:
        cols = [sql.SQL("id text PRIMARY KEY")]
        for v in config.vectors:
            cols.append(
                sql.SQL("{} vector({})").format(
                    sql.Identifier(v.name or DEFAULT_COLUMN), v.dimension
                )
            )
        cols.append(sql.SQL("payload jsonb NOT NULL DEFAULT '{}'"))
        cols.append(sql.SQL("document text"))
        for sname, spec in config.options.get("sparse_vectors", {}).items():
            cols.append(
                sql.SQL("{} sparsevec({})").format(sql.Identifier(sname), dimension_for(spec))
            )
        comments = [
            (v.name or DEFAULT_COLUMN, f"drkit:metric={v.metric.value}") for v in config.vectors
        ]
        pending = [
            {
                "name": None,
                "unique": False,
                "using": sql.SQL("USING hnsw ({} {})")
                .format(sql.Identifier(v.name or DEFAULT_COLUMN), sql.SQL(OPCLASS[v.metric]))
                .as_string(conn),
            }
            for v in config.vectors
            if v.dimension <= 2000  # pgvector's HNSW limit for vector
        ]
        constraints = []
        table_comment = None
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols)))
        for col, text in comments:
            conn.execute(
                sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    table, sql.Identifier(col), sql.Literal(text)
                )
            )
        note = (
            pending_comment(pending, table_comment, constraints)
            if pending or constraints
            else table_comment
        )
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(note)))


def build_pending(conn: Any, schema: str, name: str) -> None:
    """Create the indexes a restore left pending on ``name``, then restore its comment."""
    from psycopg import sql

    table = sql.Identifier(schema, name)
    comment = conn.execute(
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        [schema, name],
    ).fetchone()
    if not comment or not comment[0] or not comment[0].startswith(PENDING):
        return
    pending = json.loads(comment[0][len(PENDING) :])
    with conn.transaction():
        for idx in pending["indexes"]:
            free = idx.get("name") and not _exists(conn, schema, idx["name"])
            head = sql.SQL("CREATE UNIQUE INDEX" if idx.get("unique") else "CREATE INDEX")
            iname = sql.Identifier(idx["name"]) if free else sql.SQL("")
            conn.execute(
                sql.SQL("{} {} ON {} {}").format(head, iname, table, sql.SQL(idx["using"]))
            )
        for con in pending.get("constraints", []):
            ref = con.get("references")
            if ref and not _exists(conn, ref[0], ref[1]):
                log.warning(
                    "%s: foreign key %s not added: the table it references (%s) is not in "
                    "the target database",
                    name,
                    con["name"],
                    ".".join(ref),
                )
                continue
            tail = " NOT VALID" if con["kind"] == "foreign_key" else ""
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    table, sql.Identifier(con["name"]), sql.SQL(con["def"] + tail)
                )
            )
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(pending.get("comment")))
        )


def rename_indexes(conn: Any, schema: str, old: str, new: str) -> None:
    """Indexes named ``OLD_...`` (PostgreSQL's choice on a restore's temporary table)
    become ``NEW_...``, where that name is free."""
    from psycopg import sql

    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        [schema, new],
    ).fetchall()
    for (iname,) in rows:
        if not iname.startswith(old + "_"):  # PostgreSQL's names: TABLE_pkey, TABLE_col_idx
            continue
        target = new + iname[len(old) :]
        if len(target.encode()) > 63 or _exists(conn, schema, target):
            continue
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, iname), sql.Identifier(target)
            )
        )


def pending_comment(
    indexes: list[dict[str, Any]],
    comment: str | None,
    constraints: list[dict[str, Any]] | None = None,
) -> str:
    return PENDING + json.dumps(
        {"indexes": indexes, "comment": comment, "constraints": constraints or []}
    )


def _exists(conn: Any, schema: str, relname: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        [schema, relname],
    ).fetchone()
    return row is not None
