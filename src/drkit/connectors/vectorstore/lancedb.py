"""LanceDB connector (``lancedb:///PATH``, embedded).

Consistent cut: **version-pin**. Every LanceDB write makes a new table version; the
export reads the version current when it starts (``checkout(version)``), so writes
during the export are not seen. ``cut.version`` is that version number.

A collection is a table. Vector columns are ``fixed_size_list<float32>`` columns: one
called ``vector`` is the default vector, others are named vectors. LanceDB keeps the
metric in an index, not in the table, so drkit records it in the schema metadata
(``drkit.metric.<column>``) at create; describe reads the vector index's metric, then
that metadata, else ``l2`` (LanceDB's default). Tables drkit creates have columns
``id`` (string), the vectors, ``payload`` (canonical JSON string), ``document``
(string). Other tables: an ``id`` column is the id, a string ``payload`` column the
payload, and any other column is folded into the payload by name (a null cell is an
absent key, not an explicit null).

Same-engine restore: describe records the table's Arrow schema (``options
["arrow_schema"]``, base64 of the IPC schema), and a restore into LanceDB creates the
table with exactly those columns and types (the application's ``where("lang = 'en'")``
keeps working); import splits the payload back into its columns, then builds the
recorded scalar indexes (BTree, Bitmap, LabelList, FTS) and vector indexes (IVF/HNSW
type, metric, HNSW ``m``/``ef_construction``, quantiser bits and sub-vectors; IVF
partitions are LanceDB's choice for the restored row count). A vector index LanceDB
cannot train on the restored rows (too few) is skipped with a warning.

Rename: LanceDB OSS has no ``rename_table``; on a local path a table is the directory
``NAME.lance``, which drkit renames with one atomic ``os.rename``.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    PAYLOAD,
    VECTOR,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    Metric,
    Swap,
    VectorField,
    VectorStore,
    arrow_schema,
    chunks,
    conform,
    exists_error,
    not_found,
)
from drkit.connectors.vectorstore.failures import guarded
from drkit.connectors.vectorstore.lancedb_rows import canonical_rows, table_rows
from drkit.connectors.vectorstore.support import (
    SeenIds,
    exchange_paths,
    last_versions,
    regroup,
)
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

T = TypeVar("T")
_METRICS = {"cosine": Metric.COSINE, "dot": Metric.DOT, "l2": Metric.L2, "euclidean": Metric.L2}
META = "drkit.metric."
#: schema metadata of a restored table: its scalar indexes, built after the first load
SCALAR_META = "drkit.scalar_indexes"
_SCALAR_TYPES = ("BTree", "Bitmap", "LabelList", "FTS")
#: schema metadata of a restored table: its vector indexes, built after the first load
VECTOR_META = "drkit.vector_indexes"
#: queries :meth:`LanceDBStore.search_many` sends in one call
QUERIES_PER_CALL = 1000
#: fragments a Lance scan reads ahead, unless the environment says otherwise: at Lance's
#: default an export of 1M x 768 records peaked at 799-882 MiB, at 2 at 410-440 MiB, as
#: fast (2.1 s), and 100 flat searches took as long (13.8-15.3 s either way)
FRAGMENT_READAHEAD = "2"
log = logging.getLogger("drkit.vectorstore")


def _vector_params(details: dict[str, Any]) -> dict[str, int]:
    """The build parameters of a vector index, from LanceDB's ``index_details``."""
    hnsw = details.get("hnsw") or {}
    comp = details.get("compression") or {}
    out = {
        "m": hnsw.get("max_connections"),
        "ef_construction": hnsw.get("construction_ef"),
        "num_bits": comp.get("num_bits"),
        "num_sub_vectors": comp.get("num_sub_vectors"),
    }
    return {k: int(v) for k, v in out.items() if isinstance(v, int | float)}


#: an import commits a group of records once it holds this many bytes (or ``max_batch``
#: records): ~20,000 records of 768 floats, a bounded hold on the caller's buffers
GROUP_BYTES = 64 << 20


class LanceDBStore(VectorStore):
    engine = "lancedb"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=False,
        consistent_cut="version-pin",
        max_batch=50_000,
        atomic_rename=True,
        swap="exchange",
        renames_caveat="this filesystem cannot exchange two directories in one step "
        "(renameat2 RENAME_EXCHANGE): the live name was missing between two renames",
    )

    def __init__(self, url: str) -> None:
        # read by Lance at each scan; a value the user set is kept
        os.environ.setdefault("LANCE_DEFAULT_FRAGMENT_READAHEAD", FRAGMENT_READAHEAD)
        import lancedb

        self._lancedb = lancedb
        self.url = url
        self.path = Path(urlsplit(url).path)
        try:
            self._db: Any = guarded(lambda: lancedb.connect(str(self.path)), self.engine, url)
        except OSError as exc:
            raise EngineUnreachable(f"cannot open lancedb at {url}: {exc}") from exc

    def _call(self, fn: Callable[[], T], name: str | None = None) -> T:
        try:
            return guarded(fn, self.engine, self.url)  # held locks, permissions
        except VectorStoreError:
            raise
        except ValueError as exc:
            if name is not None and "was not found" in str(exc):
                raise not_found(name, self.url) from exc
            if name is not None and "already exists" in str(exc):
                raise exists_error(name) from exc
            raise IncompatibleTarget(f"lancedb refused the request: {exc}") from exc
        except OSError as exc:
            raise EngineUnreachable(f"lancedb at {self.url} failed: {exc}") from exc

    def engine_version(self) -> str:
        return f"lancedb {self._lancedb.__version__}"

    def list_collections(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            res = self._call(partial(self._db.list_tables, page_token=token))
            names.extend(res.tables)
            token = res.page_token
            if not token:
                return sorted(names)

    def _table(self, name: str) -> Any:
        return self._call(lambda: self._db.open_table(name), name)

    def _layout(self, table: Any, name: str) -> dict[str, Any]:
        schema: pa.Schema = table.schema
        meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        index_metric: dict[str, tuple[Metric, dict[str, Any]]] = {}
        for idx in self._call(table.list_indices, name):
            details = getattr(idx, "index_details", None) or {}
            metric = str(details.get("metric_type", "")).lower()
            if metric in _METRICS and len(idx.columns) == 1:
                index_metric[idx.columns[0]] = (
                    _METRICS[metric],
                    {
                        "type": str(idx.index_type),
                        "name": idx.name,
                        "params": _vector_params(details),
                    },
                )
        vectors, vcols, extra = [], [], []
        for f in schema:
            if pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type):
                metric, index = index_metric.get(
                    f.name, (Metric(meta.get(META + f.name, "l2")), {})
                )
                vname = "" if f.name == VECTOR else f.name
                vectors.append(VectorField(vname, f.type.list_size, metric, index))
                vcols.append(f.name)
            elif f.name not in (ID, PAYLOAD, DOCUMENT):
                extra.append(f.name)
        if ID not in schema.names or not vectors:
            raise IncompatibleTarget(
                f"lancedb table {name!r} needs an 'id' column and a vector column"
            )
        return {
            "vectors": vectors,
            "vcols": vcols,
            "extra": extra,
            "payload_schema": {c: str(schema.field(c).type) for c in extra},
            "has_payload": PAYLOAD in schema.names,
            "has_document": DOCUMENT in schema.names,
        }

    def describe(self, name: str) -> CollectionConfig:
        table = self._table(name)
        lay = self._layout(table, name)
        schema = table.schema.remove_metadata()
        return CollectionConfig(
            name=name,
            vectors=tuple(lay["vectors"]),
            payload_schema=lay["payload_schema"],
            engine=self.engine,
            engine_version=self.engine_version(),
            options={
                "arrow_schema": base64.b64encode(schema.serialize()).decode(),
                "scalar_indexes": [
                    {"name": i.name, "type": str(i.index_type), "column": i.columns[0]}
                    for i in self._call(table.list_indices, name)
                    if str(i.index_type) in _SCALAR_TYPES and len(i.columns) == 1
                ],
            },
        )

    def count(self, name: str) -> int:
        table = self._table(name)
        return int(self._call(table.count_rows, name))

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        table = self._table(name)
        version = int(table.version)
        self._call(lambda: table.checkout(version), name)
        lay = self._layout(table, name)
        config = self.describe(name)
        cut = CutInfo(method="version-pin", version=str(version))
        cut.count_before = int(self._call(table.count_rows, name))
        target = arrow_schema(config)

        def gen() -> Iterator[pa.RecordBatch]:
            reader = self._call(lambda: table.search().limit(None).to_batches(batch_size), name)
            for raw in reader:
                for start in range(0, len(raw), batch_size):
                    batch = canonical_rows(raw.slice(start, batch_size), lay, target)
                    cut.rows += len(batch)
                    yield batch
            cut.count_after = cut.count_before
            cut.complete = True
            if cut.rows != cut.count_before:
                cut.warning = (
                    f"exported {cut.rows} rows but version {version} has {cut.count_before}"
                )

        return ExportStream(gen(), cut)

    def check_compatible(self, config: CollectionConfig) -> None:
        super().check_compatible(config)
        for v in config.vectors:
            if v.name in (ID, PAYLOAD, DOCUMENT, VECTOR):
                raise IncompatibleTarget(f"lancedb: a named vector cannot be called {v.name!r}")

    @staticmethod
    def _table_schema(config: CollectionConfig) -> pa.Schema:
        """Canonical schema with named vectors under their plain name (no dots in Lance)."""
        canonical = arrow_schema(config)
        fields = [canonical.field(ID)]
        for v in config.vectors:
            fields.append(canonical.field(v.column).with_name(v.name or VECTOR))
        fields += [canonical.field(PAYLOAD), canonical.field(DOCUMENT)]
        meta = {f"{META}{v.name or VECTOR}": v.metric.value for v in config.vectors}
        return pa.schema(fields, metadata=meta)

    def _create(self, config: CollectionConfig, name: str) -> None:
        schema = self._recorded_schema(config) or self._table_schema(config)
        self._call(lambda: self._db.create_table(name, schema=schema), name)

    def _recorded_schema(self, config: CollectionConfig) -> pa.Schema | None:
        """The application's own table schema, recorded at export, if it fits ``config``."""
        raw = config.options.get("arrow_schema") if config.engine == self.engine else None
        if not isinstance(raw, str):
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(raw)))
        for v in config.vectors:
            col = v.name or VECTOR
            if col not in schema.names or not pa.types.is_fixed_size_list(schema.field(col).type):
                return None
            if schema.field(col).type.list_size != v.dimension:
                return None
        if ID not in schema.names:
            return None
        meta = {f"{META}{v.name or VECTOR}": v.metric.value for v in config.vectors}
        meta[SCALAR_META] = json.dumps(config.options.get("scalar_indexes", []))
        meta[VECTOR_META] = json.dumps(
            [
                {"column": v.name or VECTOR, "metric": v.metric.value, **v.index}
                for v in config.vectors
                if v.index.get("type")
            ]
        )
        return schema.with_metadata(meta)

    def _build_vector_indexes(self, table: Any, name: str) -> None:
        """Create the recorded vector indexes a restored table does not have yet."""
        from lancedb import index

        raw = (table.schema.metadata or {}).get(VECTOR_META.encode())
        wanted = json.loads(raw) if raw else []
        have = {tuple(i.columns) for i in self._call(table.list_indices, name)}
        for idx in wanted:
            kind: Any = getattr(index, str(idx.get("type")), None)
            if (idx["column"],) in have or not inspect.isclass(kind):
                continue
            make: Any = kind  # an index config class of lancedb.index
            accepted = inspect.signature(make).parameters
            params = {k: v for k, v in (idx.get("params") or {}).items() if k in accepted}
            config = make(distance_type=idx["metric"], **params)
            try:
                self._call(
                    partial(table.create_index, idx["column"], config=config, name=idx["name"])
                )
            except IncompatibleTarget as exc:  # e.g. too few rows to train it
                log.warning(
                    "%s: vector index %s (%s) not rebuilt: %s", name, idx["name"], idx["type"], exc
                )

    def _build_scalar_indexes(self, table: Any, name: str) -> None:
        """Create the recorded scalar indexes a restored table does not have yet."""
        from lancedb import index

        raw = (table.schema.metadata or {}).get(SCALAR_META.encode())
        wanted = json.loads(raw) if raw else []
        have = {tuple(i.columns) for i in self._call(table.list_indices, name)}
        for idx in wanted:
            if (idx["column"],) in have or idx["type"] not in _SCALAR_TYPES:
                continue
            config = getattr(index, idx["type"])()
            self._call(partial(table.create_index, idx["column"], config=config, name=idx["name"]))

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Upsert (see :meth:`VectorStore.import_batches`) in groups of records
        (:func:`regroup`: up to ``max_batch`` records or :data:`GROUP_BYTES`, one commit
        each); a repeated id within a group keeps its last row. Into a table empty at the
        start (a restore's), a group none of whose ids this call wrote already is
        appended: ``merge_insert`` joins every group against the whole table, which made
        a restore super-linear. A group that repeats an id goes through ``merge_insert``.
        Assumes no other writer adds the same ids to the table during the call."""
        table = self._table(name)
        lay = self._layout(table, name)
        config = self.describe(name)
        schema = table.schema
        seen = SeenIds() if self._call(table.count_rows, name) == 0 else None
        written = 0
        # one commit per group: each is a version whose manifest lists every fragment
        conformed = (conform(config, b, name) for b in batches)
        for batch in regroup(conformed, self.capabilities.max_batch, GROUP_BYTES):
            ids = batch.column(ID).to_pylist()
            keep = last_versions(ids)
            if keep is not None:  # merge_insert refuses two source rows of one id
                batch, ids = batch.take(pa.array(keep)), [ids[i] for i in keep]
            data = table_rows(batch, lay, schema, name)
            hashes = SeenIds.hashes(ids)
            if seen is not None and not seen.any_of(hashes):
                self._call(partial(table.add, data), name)
            else:
                merge = table.merge_insert(ID).when_matched_update_all()
                self._call(partial(merge.when_not_matched_insert_all().execute, data), name)
            if seen is not None:
                seen.add(hashes)
            written += len(batch)
        if written:
            self._build_scalar_indexes(table, name)
            self._build_vector_indexes(table, name)
        return written

    def _query(self, name: str, table: Any, query: Any, k: int, using: str) -> Any:
        config = self.describe(name)
        field = next((v for v in config.vectors if v.name == using), None)
        if field is None:
            raise IncompatibleTarget(f"table {name!r} has no vector {using!r}")
        distance = {Metric.COSINE: "cosine", Metric.DOT: "dot", Metric.L2: "l2"}[field.metric]
        return (
            table.search(query, vector_column_name=using or VECTOR)
            .distance_type(distance)
            .limit(k)
            .select([ID, "_distance"])
        )

    def search(self, name: str, vector: Sequence[float], k: int, *, using: str = "") -> list[str]:
        table = self._table(name)
        query = self._query(name, table, [float(x) for x in vector], k, using)
        res = self._call(query.to_arrow, name)
        return [str(i) for i in res.column(ID).to_pylist()]

    def search_many(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        k: int,
        *,
        using: str = "",
        effort: int | None = None,
    ) -> list[list[str]]:
        """One query of many vectors per :data:`QUERIES_PER_CALL`: LanceDB answers them
        in one pass over the table (``query_index`` says whose row each is, rows of one
        query come best first)."""
        if len(vectors) <= 1:
            return super().search_many(name, vectors, k, using=using, effort=effort)
        table = self._table(name)
        out: list[list[str]] = []
        for chunk in chunks(vectors, QUERIES_PER_CALL):
            query = self._query(name, table, [[float(x) for x in v] for v in chunk], k, using)
            res = self._call(query.to_arrow, name)
            found: list[list[str]] = [[] for _ in chunk]
            ids = res.column(ID).to_pylist()
            # one vector is one plain query: no query_index column then
            whose = (
                res.column("query_index").to_pylist()
                if "query_index" in res.schema.names
                else [0] * len(ids)
            )
            for q, rid in zip(whose, ids, strict=True):
                found[q].append(str(rid))
            out.extend(found)
        return out

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        table = self._table(name)
        for chunk in chunks(ids, 1000):
            quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in chunk)
            self._call(partial(table.delete, f"{ID} IN ({quoted})"), name)

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        if self._absent(name, name in self.list_collections(), missing_ok=missing_ok):
            return
        self._call(lambda: self._db.drop_table(name), name)

    def rename(self, name: str, new_name: str) -> None:
        tables = self.list_collections()
        if name not in tables:
            raise not_found(name, self.url)
        if new_name in tables:
            raise exists_error(new_name)
        src, dst = self.path / f"{name}.lance", self.path / f"{new_name}.lance"
        if not src.is_dir():
            super().rename(name, new_name)
            return
        os.rename(src, dst)  # atomic on one filesystem; fails if dst appeared meanwhile

    def swap_in(self, new: str, name: str, old: str) -> Swap:
        """One exchange of the two table directories (``renameat2(RENAME_EXCHANGE)``):
        readers of ``name`` see the previous table or the new one, never neither; then
        the previous one (now under ``new``) is renamed to ``old``. Two renames where the
        filesystem cannot exchange."""
        tables = self.list_collections()
        for t in (new, name):
            if t not in tables:
                raise not_found(t, self.url)
        if old in tables:
            raise exists_error(old)
        a, b = self.path / f"{new}.lance", self.path / f"{name}.lance"
        if not (a.is_dir() and b.is_dir()) or not exchange_paths(str(a), str(b)):
            return super().swap_in(new, name, old)
        os.rename(a, self.path / f"{old}.lance")
        return Swap(True, "exchange", old)
