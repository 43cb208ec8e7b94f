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
    NAME      sparsevec(1000000000)  -- one per sparse vector (Qdrant's, Milvus's), if any

plus one HNSW index per vector column with the metric's operator class, and a column
comment ``drkit:metric=<metric>`` (pgvector keeps the metric in the index, not the
column). Existing tables are read too: the primary key is the id (rendered as text), a
column called ``document`` the document, a ``jsonb`` column called ``payload`` the
payload, and any other column is folded into the payload by name (:mod:`.pgvector_layout`).
Metric: from the vector column's index operator class, else the comment, else ``l2``.
Import puts each payload key that is a column into that column and the rest into
``payload`` (:mod:`.pgvector_rows`). A ``sparsevec`` column is a sparse vector
(``__drkit_sparse.NAME`` in the canonical payload; limits in :mod:`.pgvector_sparse`).

Same-engine restore rebuilds the table's own DDL (:mod:`.pgvector_ddl`): id type
(``uuid`` stays ``uuid``), typed columns, NOT NULL/DEFAULT, comments, HNSW parameters,
btree/GIN indexes and their names. Records are loaded with ``COPY`` into the bare
table; the indexes are built after the load (``COPY`` then ``CREATE INDEX``).
"""

from __future__ import annotations

import contextlib
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
    VectorStore,
    chunks,
    conform,
    exists_error,
    not_found,
)
from drkit.connectors.vectorstore.pgvector_ddl import (
    build_pending,
    create_table,
    recorded_ddl,
    rename_indexes,
    table_ddl,
)
from drkit.connectors.vectorstore.pgvector_layout import (
    DEFAULT_COLUMN,
    LIST_SQL,
    Layout,
    read_layout,
)
from drkit.connectors.vectorstore.pgvector_rows import load_rows, select, to_batch, to_rows
from drkit.connectors.vectorstore.support import import_groups
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

T = TypeVar("T")


class PgvectorStore(VectorStore):
    engine = "pgvector"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=False,
        consistent_cut="transaction",
        max_batch=10_000,
        atomic_rename=True,
        search_effort=True,
        sparse_vectors=True,
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
        return self._call(lambda c: [r[0] for r in c.execute(LIST_SQL, [self.schema])])

    def _layout(self, name: str, conn: Any = None) -> Layout:
        if conn is not None:
            return read_layout(conn, self.schema, name, self.url)
        return self._call(lambda c: read_layout(c, self.schema, name, self.url), name)

    def describe(self, name: str) -> CollectionConfig:
        lay = self._layout(name)
        ddl = self._call(lambda c: table_ddl(c, self.schema, name), name)
        return CollectionConfig(
            name=name,
            vectors=lay.vectors,
            payload_schema=lay.payload_schema,
            engine=self.engine,
            engine_version=self.engine_version(),
            options={
                "id_type": lay.pk_type,
                "id_column": lay.pk,
                "ddl": ddl,
                **({"sparse_vectors": lay.sparse_options()} if lay.sparse else {}),
            },
        )

    def count(self, name: str) -> int:
        from psycopg import sql

        q = sql.SQL("SELECT count(*) FROM {}").format(self._ident(name))
        self._layout(name)
        return int(self._call(lambda c: c.execute(q).fetchone()[0], name))

    # -- export --------------------------------------------------------------------------

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
                lay = self._layout(name, conn)
                cut.count_before = int(conn.execute(count_q).fetchone()[0])
                cut.version = str(conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])
                with conn.cursor(name="drkit_export", binary=True) as cur:
                    cur.itersize = batch_size
                    cur.execute(select(lay, self._ident(name)))
                    while True:
                        rows = cur.fetchmany(batch_size)
                        if not rows:
                            break
                        cut.rows += len(rows)
                        yield to_batch(config, lay, rows)
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

    # -- write ---------------------------------------------------------------------------

    def check_name(self, name: str) -> None:
        super().check_name(name)
        if len(name.encode()) > 63:
            raise IncompatibleTarget(
                f"{name!r} is longer than PostgreSQL's 63-byte table name limit",
                hint="choose a shorter name with --collection",
            )

    def check_compatible(self, config: CollectionConfig) -> None:
        """Also: each sparse vector becomes a column of its name (:mod:`.pgvector_sparse`),
        which must be free and fit PostgreSQL's 63-byte identifiers."""
        super().check_compatible(config)
        if recorded_ddl(config) is not None:
            return  # the source table's own sparsevec columns
        taken = {ID, PAYLOAD, DOCUMENT, *(v.name or DEFAULT_COLUMN for v in config.vectors)}
        for sname in config.options.get("sparse_vectors", {}):
            if sname in taken or not sname or len(sname.encode()) > 63:
                raise IncompatibleTarget(
                    f"sparse vector {sname!r} cannot be a column of its name in pgvector "
                    f"({'taken' if sname in taken else 'not a valid column name'})",
                    hint="restore into Qdrant or Milvus",
                )

    def _create(self, config: CollectionConfig, name: str) -> None:
        """The bare table (:func:`create_table`); its indexes are built after the load."""
        self._call(lambda c: create_table(c, self.schema, name, config), name)

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Rows go to their columns (payload keys that are columns, the rest into
        ``payload``), ``max_batch`` rows a statement however the caller cut the records
        (:func:`import_groups`). Into a table empty at the start, a batch none of whose ids
        this call wrote already is ``COPY``'d straight in; otherwise it goes through a temporary
        table and ``INSERT ... ON CONFLICT DO UPDATE``. A repeated id within a batch
        keeps its last row. Indexes a restore left pending are built at the end."""
        config = self.describe(name)
        lay = self._layout(name)
        table = self._ident(name)
        written = 0
        conformed = (conform(config, b, name) for b in batches)
        empty = self.count(name) == 0
        for batch, _, fresh in import_groups(conformed, self.capabilities.max_batch, empty):
            rows = to_rows(config, batch, lay, name)
            self._call(partial(load_rows, table=table, lay=lay, rows=rows, fresh=fresh), name)
            written += len(batch)
        self._call(lambda c: build_pending(c, self.schema, name), name)
        return written

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
        lay = self._layout(name)
        op = {Metric.COSINE: "<=>", Metric.DOT: "<#>", Metric.L2: "<->"}[field.metric]
        q = sql.SQL("SELECT {}::text FROM {} ORDER BY {} {} %s::vector LIMIT %s").format(
            sql.Identifier(lay.pk),
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

        lay = self._layout(name)
        q = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s::{}[])").format(
            self._ident(name), sql.Identifier(lay.pk), sql.SQL(lay.pk_type)
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
