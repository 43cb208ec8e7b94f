"""pgvector connector (``postgresql://USER[:PASSWORD]@HOST:PORT/DB[?schema=S]``).

A collection is a table in the schema (default ``public``) with a primary key and at
least one ``vector(n)`` column. Consistent cut: **transaction**. The export runs in one
``REPEATABLE READ READ ONLY`` transaction through a server-side cursor, so it sees one
snapshot of the table however long it takes, and the count is taken in the same
transaction.

Layout of tables drkit creates::

    id        text PRIMARY KEY
    embedding vector(n)      -- the default vector; a named vector is a column of its name
    payload   jsonb NOT NULL DEFAULT '{}'
    document  text

plus one HNSW index per vector column with the metric's operator class, and a column
comment ``drkit:metric=<metric>`` (pgvector keeps the metric in the index, not the
column). Existing tables are read too: the primary key is the id (rendered as text), a
column called ``document`` the document, a ``jsonb`` column called ``payload`` the
payload, and any other column is folded into the payload by name. Metric: from the
vector column's index operator class, else the comment, else ``l2``. Import puts each
payload key that is a column into that column and the rest into ``payload``.

Same-engine restore rebuilds the table's own DDL (:mod:`.pgvector_ddl`): id type
(``uuid`` stays ``uuid``), typed columns, NOT NULL/DEFAULT, comments, HNSW parameters,
btree/GIN indexes and their names. Records are loaded with ``COPY`` into the bare
table; the indexes are built after the load (``COPY`` then ``CREATE INDEX``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    PAYLOAD,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    Metric,
    Swap,
    VectorField,
    VectorStore,
    chunks,
    conform,
    exists_error,
    make_batch,
    not_found,
    vectors_of,
)
from drkit.connectors.vectorstore.pgvector_ddl import (
    build_pending,
    pending_comment,
    rename_indexes,
    table_ddl,
)
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

T = TypeVar("T")
DEFAULT_COLUMN = "embedding"
_OPS = {
    "vector_cosine_ops": Metric.COSINE,
    "vector_ip_ops": Metric.DOT,
    "vector_l2_ops": Metric.L2,
}
_OPCLASS = {m: op for op, m in _OPS.items()}


class PgvectorStore(VectorStore):
    engine = "pgvector"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=False,
        consistent_cut="transaction",
        max_batch=10_000,
        atomic_rename=True,
        search_effort=True,
        swap="exchange",
    )

    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.schema = query.pop("schema", ["public"])[0]
        self._dsn = parts._replace(
            scheme="postgresql", query="&".join(f"{k}={v[0]}" for k, v in query.items())
        ).geturl()
        safe = parts.netloc.replace(f":{parts.password}@", ":***@") if parts.password else None
        self.url = parts._replace(netloc=safe).geturl() if safe else url
        self._conn: Any = None

    # -- connection and errors -----------------------------------------------------------

    def _connect(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
            except self._psycopg.OperationalError as exc:
                raise EngineUnreachable(
                    f"postgresql at {self.url} is unreachable: {_first_line(exc)}"
                ) from exc
        return self._conn

    def _call(self, fn: Callable[[Any], T], name: str | None = None) -> T:
        pg = self._psycopg
        try:
            return fn(self._connect())
        except VectorStoreError:
            raise
        except pg.errors.UndefinedTable as exc:
            raise not_found(name or "?", self.url) from exc
        except pg.errors.DuplicateTable as exc:
            raise exists_error(name or "?") from exc
        except pg.OperationalError as exc:
            self._reset()
            raise EngineUnreachable(f"postgresql at {self.url} failed: {_first_line(exc)}") from exc
        except (pg.errors.DataError, pg.errors.IntegrityError, pg.ProgrammingError) as exc:
            raise IncompatibleTarget(f"postgresql refused the records: {_first_line(exc)}") from exc

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # the connection is broken anyway
                self._conn.close()
        self._conn = None

    def _ident(self, name: str) -> Any:
        from psycopg import sql

        return sql.Identifier(self.schema, name)

    def engine_version(self) -> str:
        def q(conn: Any) -> str:
            pgv = conn.execute("SHOW server_version").fetchone()[0]
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'")
            ext = row.fetchone()
            return f"PostgreSQL {pgv} / pgvector {ext[0] if ext else 'not installed'}"

        return self._call(q)

    # -- catalog -------------------------------------------------------------------------

    def list_collections(self) -> list[str]:
        sql_text = """
            SELECT DISTINCT c.relname FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
              AND format_type(a.atttypid, a.atttypmod) LIKE 'vector(%%'
            ORDER BY 1"""
        return self._call(lambda c: [r[0] for r in c.execute(sql_text, [self.schema])])

    def _columns(self, conn: Any, name: str) -> list[tuple[str, str, str | None, bool]]:
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
            [self.schema, name],
        ).fetchall()
        if not rows:
            raise not_found(name, self.url)
        return [(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def _index_info(self, conn: Any, name: str) -> dict[str, tuple[str, str]]:
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
            [self.schema, name],
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows if r[1] in _OPS}

    def _layout(self, conn: Any, name: str) -> dict[str, Any]:
        cols = self._columns(conn, name)
        indexes = self._index_info(conn, name)
        pk = [c for c in cols if c[3]]
        if len(pk) != 1:
            raise IncompatibleTarget(
                f"table {name!r} needs a single-column primary key to be a collection"
            )
        vectors: list[VectorField] = []
        vcols: list[str] = []
        payload_schema: dict[str, str] = {}
        extra: list[str] = []
        has_payload = False
        for col, typ, comment, is_pk in cols:
            if is_pk:
                continue
            if typ.startswith("vector("):
                metric = Metric.L2
                index: dict[str, Any] = {}
                if col in indexes:
                    metric = _OPS[indexes[col][0]]
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
                extra.append(col)
        if not vectors:
            raise not_found(name, self.url)
        return {
            "pk": pk[0][0],
            "pk_type": pk[0][1],
            "vectors": vectors,
            "vcols": vcols,
            "payload_schema": payload_schema,
            "extra": extra,
            "has_payload": has_payload,
            "has_document": any(c[0] == DOCUMENT and c[1] == "text" for c in cols),
        }

    def describe(self, name: str) -> CollectionConfig:
        lay = self._call(lambda c: self._layout(c, name), name)
        ddl = self._call(lambda c: table_ddl(c, self.schema, name), name)
        return CollectionConfig(
            name=name,
            vectors=tuple(lay["vectors"]),
            payload_schema=lay["payload_schema"],
            engine=self.engine,
            engine_version=self.engine_version(),
            options={"id_type": lay["pk_type"], "id_column": lay["pk"], "ddl": ddl},
        )

    def count(self, name: str) -> int:
        from psycopg import sql

        q = sql.SQL("SELECT count(*) FROM {}").format(self._ident(name))
        self._call(lambda c: self._layout(c, name), name)
        return int(self._call(lambda c: c.execute(q).fetchone()[0], name))

    # -- export --------------------------------------------------------------------------

    def _select(self, lay: dict[str, Any], name: str) -> Any:
        from psycopg import sql

        fields: list[sql.Composable] = [sql.SQL("{}::text").format(sql.Identifier(lay["pk"]))]
        fields += [sql.SQL("{}::real[]").format(sql.Identifier(c)) for c in lay["vcols"]]
        fields.append(sql.Identifier(PAYLOAD) if lay["has_payload"] else sql.SQL("NULL::jsonb"))
        if lay["extra"]:
            fields.append(
                sql.SQL("jsonb_build_object({})").format(
                    sql.SQL(", ").join(
                        sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c))
                        for c in lay["extra"]
                    )
                )
            )
        else:
            fields.append(sql.SQL("NULL::jsonb"))
        fields.append(sql.Identifier(DOCUMENT) if lay["has_document"] else sql.SQL("NULL::text"))
        return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), self._ident(name))

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        """The transaction (and its own connection) starts at the first ``next``, so a
        stream that is never iterated holds nothing; an abandoned one is closed by GC."""
        from psycopg import sql

        config = self.describe(name)
        pg = self._psycopg
        cut = CutInfo(method="transaction")
        count_q = sql.SQL("SELECT count(*) FROM {}").format(self._ident(name))

        def gen() -> Iterator[pa.RecordBatch]:
            try:
                conn = pg.connect(self._dsn, connect_timeout=10)
            except pg.OperationalError as exc:
                raise EngineUnreachable(f"postgresql at {self.url} is unreachable") from exc
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                lay = self._layout(conn, name)
                cut.count_before = int(conn.execute(count_q).fetchone()[0])
                cut.version = str(conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])
                with conn.cursor(name="drkit_export", binary=True) as cur:
                    cur.itersize = batch_size
                    cur.execute(self._select(lay, name))
                    while True:
                        rows = cur.fetchmany(batch_size)
                        if not rows:
                            break
                        cut.rows += len(rows)
                        yield self._to_batch(config, rows)
                conn.execute("COMMIT")
            except pg.OperationalError as exc:
                raise EngineUnreachable(
                    f"postgresql at {self.url} failed during the export of {name!r}: "
                    f"{_first_line(exc)}",
                    hint="check that the database is up, then snapshot again",
                ) from exc
            finally:
                conn.close()
            cut.count_after = cut.count_before
            cut.complete = True
            if cut.rows != cut.count_before:  # cannot happen inside one snapshot
                cut.warning = f"exported {cut.rows} rows but counted {cut.count_before}"

        return ExportStream(gen(), cut)

    @staticmethod
    def _to_batch(config: CollectionConfig, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        nv = len(config.vectors)
        ids = [r[0] for r in rows]
        vecs = {v.name: [r[1 + i] for r in rows] for i, v in enumerate(config.vectors)}
        payloads = []
        for r in rows:
            payload = dict(r[1 + nv] or {})
            payload.update(r[2 + nv] or {})
            payloads.append(payload)
        docs = [r[3 + nv] for r in rows]
        return make_batch(config, ids, vecs, payloads, docs)

    # -- write ---------------------------------------------------------------------------

    def check_name(self, name: str) -> None:
        super().check_name(name)
        if len(name.encode()) > 63:
            raise IncompatibleTarget(
                f"{name!r} is longer than PostgreSQL's 63-byte table name limit",
                hint="choose a shorter name with --collection",
            )

    def _create(self, config: CollectionConfig, name: str) -> None:
        """Create the bare table; its secondary indexes wait in the table comment until
        the first import has loaded the records (:func:`build_pending`)."""
        from psycopg import sql

        table = self._ident(name)
        recorded = self._recorded_ddl(config)
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
            indexes: list[dict[str, Any]] = list(ddl["indexes"])
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
            comments = [
                (v.name or DEFAULT_COLUMN, f"drkit:metric={v.metric.value}") for v in config.vectors
            ]
            indexes = []
            constraints = []
            table_comment = None

        def run(conn: Any) -> None:
            pending = indexes
            if recorded is None:  # drkit's layout: one HNSW index per vector column
                pending = [
                    {
                        "name": None,
                        "unique": False,
                        "using": sql.SQL("USING hnsw ({} {})")
                        .format(
                            sql.Identifier(v.name or DEFAULT_COLUMN), sql.SQL(_OPCLASS[v.metric])
                        )
                        .as_string(conn),
                    }
                    for v in config.vectors
                    if v.dimension <= 2000  # pgvector's HNSW limit for vector
                ]
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols))
                )
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

        self._call(run, name)

    def _recorded_ddl(self, config: CollectionConfig) -> tuple[dict[str, Any], str] | None:
        """The source table's DDL and primary key, if recorded by this engine and its
        vector columns are still the config's (a mapping may have renamed them)."""
        ddl = config.options.get("ddl") if config.engine == self.engine else None
        pk = config.options.get("id_column")
        if not isinstance(ddl, dict) or not isinstance(pk, str):
            return None
        types = {c["name"]: c["type"] for c in ddl.get("columns", [])}
        vcols = {c for c, t in types.items() if t.startswith("vector(")}
        wanted = {v.name or DEFAULT_COLUMN: f"vector({v.dimension})" for v in config.vectors}
        if vcols != set(wanted) or any(types[c] != t for c, t in wanted.items()) or pk not in types:
            return None
        return ddl, pk

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Rows go to their columns (payload keys that are columns, the rest into
        ``payload``). Into an empty table they are ``COPY``'d straight in; otherwise
        through a temporary table and ``INSERT ... ON CONFLICT DO UPDATE``. Indexes a
        restore left pending are built at the end."""
        from psycopg import sql

        config = self.describe(name)
        lay = self._call(lambda c: self._layout(c, name), name)
        table = self._ident(name)
        cols = [lay["pk"], *lay["vcols"]]
        cols += [PAYLOAD] if lay["has_payload"] else []
        cols += [DOCUMENT] if lay["has_document"] else []
        cols += lay["extra"]
        names = [sql.Identifier(c) for c in cols]
        col_list = sql.SQL(", ").join(names)
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names[1:])
        tmp = sql.Identifier("drkit_import")
        fresh = self.count(name) == 0
        written = 0
        for big in batches:
            big = conform(config, big, name)
            for start in range(0, len(big), self.capabilities.max_batch):
                batch = big.slice(start, self.capabilities.max_batch)
                rows = self._rows(config, batch, lay, name)

                def load(conn: Any, rows: list[tuple[Any, ...]] = rows) -> None:
                    with conn.transaction():
                        if fresh:  # a restore's new table: no conflicts, COPY straight in
                            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(table, col_list)
                            with conn.cursor().copy(copy_sql) as copy:
                                for row in rows:
                                    copy.write_row(row)
                            return
                        conn.execute(
                            sql.SQL(
                                "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} LIMIT 0"
                            ).format(tmp, col_list, table)
                        )
                        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(tmp, col_list)
                        with conn.cursor().copy(copy_sql) as copy:
                            for row in rows:
                                copy.write_row(row)
                        conn.execute(
                            sql.SQL(
                                "INSERT INTO {} ({}) SELECT {} FROM {} "
                                "ON CONFLICT ({}) DO UPDATE SET {}"
                            ).format(
                                table, col_list, col_list, tmp, sql.Identifier(lay["pk"]), updates
                            )
                        )

                self._call(load, name)
                written += len(batch)
        self._call(lambda c: build_pending(c, self.schema, name), name)
        return written

    @staticmethod
    def _rows(
        config: CollectionConfig, batch: pa.RecordBatch, lay: dict[str, Any], name: str
    ) -> list[tuple[Any, ...]]:
        from psycopg.types.json import Jsonb

        ids = batch.column(ID).to_pylist()
        vec_text = []
        for v in config.vectors:
            mat = vectors_of(batch, v.column)
            # repr of the float64 of a float32 parses back to the same float32 (strtof)
            vec_text.append(["[" + ",".join(map(repr, row)) + "]" for row in mat.tolist()])
        payloads = [json.loads(p) for p in batch.column(PAYLOAD).to_pylist()]
        docs = batch.column(DOCUMENT).to_pylist()
        extra: list[str] = lay["extra"]
        is_json = [lay["payload_schema"][c] in ("json", "jsonb") for c in extra]
        if not lay["has_document"] and any(d is not None for d in docs):
            raise IncompatibleTarget(f"table {name!r} has no document column for the documents")
        out = []
        for i, rid in enumerate(ids):
            p = payloads[i]
            cells = [p.pop(c, None) for c in extra]
            cells = [
                Jsonb(v) if j and v is not None else v for v, j in zip(cells, is_json, strict=True)
            ]
            if not lay["has_payload"] and p:
                raise IncompatibleTarget(
                    f"table {name!r} has no column for payload keys {sorted(p)[:5]}",
                    hint="restore into a new table with --collection",
                )
            row: list[Any] = [rid, *(vt[i] for vt in vec_text)]
            row += [Jsonb(p)] if lay["has_payload"] else []
            row += [docs[i]] if lay["has_document"] else []
            out.append((*row, *cells))
        return out

    def search(
        self,
        name: str,
        vector: Sequence[float],
        k: int,
        *,
        using: str = "",
        effort: int | None = None,
    ) -> list[str]:
        from psycopg import sql

        config = self.describe(name)
        field = next((v for v in config.vectors if v.name == using), None)
        if field is None:
            raise IncompatibleTarget(f"table {name!r} has no vector {using!r}")
        lay = self._call(lambda c: self._layout(c, name), name)
        op = {Metric.COSINE: "<=>", Metric.DOT: "<#>", Metric.L2: "<->"}[field.metric]
        q = sql.SQL("SELECT {}::text FROM {} ORDER BY {} {} %s::vector LIMIT %s").format(
            sql.Identifier(lay["pk"]),
            self._ident(name),
            sql.Identifier(using or DEFAULT_COLUMN),
            sql.SQL(op),
        )
        text = "[" + ",".join(repr(float(x)) for x in vector) + "]"
        if not effort:
            return self._call(lambda c: [r[0] for r in c.execute(q, [text, k])], name)
        # the candidate lists of this query only (SET LOCAL): HNSW's ef_search (at most
        # 1000 in pgvector), IVFFlat's probes
        ef, probes = str(min(1000, max(effort, k))), str(max(1, effort))

        def run(c: Any) -> list[str]:
            with c.transaction():
                c.execute("SELECT set_config('hnsw.ef_search', %s, true)", [ef])
                c.execute("SELECT set_config('ivfflat.probes', %s, true)", [probes])
                return [r[0] for r in c.execute(q, [text, k])]

        return self._call(run, name)

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        from psycopg import sql

        lay = self._call(lambda c: self._layout(c, name), name)
        q = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s::{}[])").format(
            self._ident(name), sql.Identifier(lay["pk"]), sql.SQL(lay["pk_type"])
        )
        for chunk in chunks(ids, self.capabilities.max_batch):
            self._call(partial(_execute, q, [chunk]), name)

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        from psycopg import sql

        if self._absent(name, name in self.list_collections(), missing_ok=missing_ok):
            return
        self._call(lambda c: c.execute(sql.SQL("DROP TABLE {}").format(self._ident(name))), name)

    def rename(self, name: str, new_name: str) -> None:
        from psycopg import sql

        self.check_name(new_name)
        if name not in self.list_collections():
            raise not_found(name, self.url)
        q = sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            self._ident(name), sql.Identifier(new_name)
        )

        def run(conn: Any) -> None:
            with conn.transaction():
                conn.execute(q)
                rename_indexes(conn, self.schema, name, new_name)

        self._call(run, new_name)

    def swap_in(self, new: str, name: str, old: str) -> Swap:
        """Both renames in one transaction: atomic for every reader."""
        from psycopg import sql

        self.check_name(old)
        first = sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            self._ident(name), sql.Identifier(old)
        )
        second = sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            self._ident(new), sql.Identifier(name)
        )

        def run(conn: Any) -> None:
            with conn.transaction():
                conn.execute(first)
                conn.execute(second)

        self._call(run, name)
        return Swap(True, "transaction", old)

    def close(self) -> None:
        self._reset()


def _execute(query: Any, params: Any, conn: Any) -> None:
    conn.execute(query, params)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
