"""Milvus connector (``milvus-lite:///PATH.db`` embedded, ``milvus://HOST:PORT`` server).

Consistent cut: **count-check**. The export pages with ``query_iterator`` (primary-key
order) and counts before and after; Milvus Lite has no MVCC timestamp for iterators
(it logs "failed to get mvccTs"), so a concurrent write is only detected, not excluded.

Collections drkit creates: ``id`` VARCHAR primary key (max 1024 bytes), one
``FLOAT_VECTOR`` field per vector (``vector`` for the default one, the vector's name
for named ones) each with an AUTOINDEX of the metric, ``document`` VARCHAR nullable,
and the *dynamic field* on: payload keys become top-level dynamic fields, as Milvus
applications usually query them. A payload key that collides with a schema field
(``document``, ``id``, a vector's name) is stored as the dynamic field
``__drkit_key_<key>`` and given back under its own name on export. Other
collections: the primary key (INT64 or VARCHAR) is the id, a VARCHAR
``document`` field the document, and every other scalar/dynamic field goes into the
payload. Metric: from each vector field's index (``COSINE``/``IP``/``L2``). Vectors are
stored as given (no cosine normalisation). ``upsert`` in Milvus Lite keeps dynamic
fields of the old entity, so import deletes the ids first, then inserts. Entities to
canonical batches and back: :mod:`.milvus_rows`.

Same-engine restore (:mod:`.milvus_schema`): describe records the collection's schema
(every field with its type, params, nullability, partition key; primary key name and
type; the dynamic flag), its indexes (type, metric, params, scalar indexes too) and its
partitions in ``options``; a restore into Milvus recreates them, so an INT64 ``pk``
stays INT64 and declared fields stay declared, and records go back to their partitions
(below). Not
carried: ``auto_id`` (restored ids are kept, so the primary key is created without it).

Sparse vectors: a ``SPARSE_FLOAT_VECTOR`` field travels in the canonical payload as
``__drkit_sparse.NAME`` (``{"indices": [...], "values": [...]}``, as Qdrant's sparse
vectors do) with its name in ``options["sparse_vectors"]``; a restore into Milvus or
Qdrant makes it a sparse vector again (into Milvus: with a ``SPARSE_INVERTED_INDEX``,
IP), so a Qdrant hybrid collection keeps its sparse search in Milvus and back. Milvus
has no empty or null sparse vector: a record without one is refused (nothing written).

Partitions: in a collection with partitions of its own (and no partition key, which
places records by itself), export reads partition by partition and gives each record
of a partition other than ``_default`` the payload key ``__drkit_partition``; import
into a collection that has that partition puts the record there (and drops the key),
so a same-engine restore puts every record back in its partition. Other engines keep
the key in the payload (``not_carried`` says so).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    VECTOR,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    Metric,
    VectorField,
    VectorStore,
    check_name_pattern,
    chunks,
    conform,
    exists_as,
    exists_error,
    not_found,
)
from drkit.connectors.vectorstore.failures import engine_failure, guarded, logged_cause
from drkit.connectors.vectorstore.milvus_rows import (
    DEFAULT_PARTITION,
    PARTITION_KEY,
    Layout,
    in_filter,
    to_batch,
    to_rows,
)
from drkit.connectors.vectorstore.milvus_schema import (
    METRICS,
    default_schema,
    effort_params,
    fits,
    recorded_options,
    recorded_schema,
)
from drkit.connectors.vectorstore.support import import_groups
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

#: seconds a connect waits for the server
CONNECT_TIMEOUT = 30
#: a connect that fails sooner than this was refused by a live server (a closed pooled
#: channel, bad parameters): tried once more
FAST_FAILURE = 5.0

T = TypeVar("T")
#: vectors :meth:`MilvusStore.search_many` sends in one ``search`` (Milvus takes 16384)
QUERIES_PER_CALL = 1000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


class MilvusStore(VectorStore):
    engine = "milvus"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=False,
        consistent_cut="count-check",
        max_batch=1000,
        atomic_rename=True,
        search_effort=True,
        sparse_vectors=True,
        swap="alias",
        renames_caveat="the live name is a collection, not an alias: Milvus swapped it by two "
        "rename_collection calls and it was missing in between; address the collection "
        "through an alias (create_alias) to have it swapped atomically",
    )

    def __init__(self, url: str) -> None:
        from pymilvus import DataType, MilvusClient

        # pymilvus logs every failed RPC at ERROR with a traceback; drkit raises instead
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        self._types = DataType
        self.url = url
        parts = urlsplit(url)
        uri = parts.path if parts.scheme == "milvus-lite" else f"http://{parts.netloc}"
        # Milvus Lite logs why it could not start (with a traceback) and raises without it
        with logged_cause("milvus_lite") as logged:
            for attempt in (1, 2):
                started = time.monotonic()
                try:
                    self._client: Any = MilvusClient(uri=uri, timeout=CONNECT_TIMEOUT)
                    break
                except Exception as exc:
                    # pymilvus reuses one gRPC channel per address; a server that sent it a
                    # GOAWAY (too_many_pings after an idle spell) fails the next connect at
                    # once with UNAVAILABLE, and a new channel then works. A server that is
                    # not there fails after the whole timeout: that is not retried.
                    if attempt == 1 and time.monotonic() - started < FAST_FAILURE:
                        continue
                    cause = logged[-1] if logged else exc
                    err = engine_failure(cause, self.engine, url)
                    raise err or EngineUnreachable(
                        f"milvus at {url} is unreachable: {exc}"
                    ) from cause

    def _call(self, fn: Callable[[], T], name: str | None = None) -> T:
        from pymilvus.exceptions import MilvusException

        try:
            return guarded(fn, self.engine, self.url)  # held locks, permissions
        except VectorStoreError:
            raise
        except MilvusException as exc:
            msg = str(getattr(exc, "message", exc))
            if name is not None and ("not exist" in msg or "not found" in msg):
                raise not_found(name, self.url) from exc
            if exc.code in (1, 2) or "unavailable" in msg.lower() or "connect" in msg.lower():
                raise EngineUnreachable(f"milvus at {self.url} failed: {msg}") from exc
            raise IncompatibleTarget(f"milvus refused the request: {msg}") from exc
        except (ConnectionError, OSError) as exc:
            raise EngineUnreachable(f"milvus at {self.url} is unreachable: {exc}") from exc

    def engine_version(self) -> str:
        return str(self._call(self._client.get_server_version))

    def list_collections(self) -> list[str]:
        return sorted(self._call(self._client.list_collections))

    def _has(self, name: str) -> bool:
        return bool(self._call(partial(self._client.has_collection, name)))

    def _layout(self, name: str) -> Layout:
        if not self._has(name):
            raise not_found(name, self.url)
        desc = self._call(partial(self._client.describe_collection, name), name)
        t = self._types
        vectors, vfields, schema, sparse = [], [], {}, []
        pk = pk_type = None
        has_doc = False
        for f in desc["fields"]:
            if f.get("is_primary"):
                pk, pk_type = f["name"], f["type"]
            elif f["type"] == t.FLOAT_VECTOR:
                idx = (
                    self._call(
                        partial(self._client.describe_index, name, index_name=f["name"]), name
                    )
                    or {}
                )
                metric = METRICS.get(str(idx.get("metric_type", "L2")).upper(), Metric.L2)
                index = {k: v for k, v in idx.items() if k in ("index_type", "params")}
                vname = "" if f["name"] == VECTOR else f["name"]
                vectors.append(VectorField(vname, int(f["params"]["dim"]), metric, index))
                vfields.append(f["name"])
            elif f["type"] == t.SPARSE_FLOAT_VECTOR:
                sparse.append(f["name"])
            elif "VECTOR" in str(f["type"]):
                raise IncompatibleTarget(f"milvus field {f['name']!r} is {f['type']} (unsupported)")
            elif f["name"] == DOCUMENT and f["type"] == t.VARCHAR:
                has_doc = True
            else:
                schema[f["name"]] = str(getattr(f["type"], "name", f["type"]))
        keyed = any(f.get("is_partition_key") for f in desc["fields"])
        return Layout(
            pk=str(pk),
            pk_int=pk_type == t.INT64,
            partitions=() if keyed else tuple(self._partitions(name)),
            vectors=tuple(vectors),
            vfields=tuple(vfields),
            sparse=tuple(sparse),
            payload_schema=schema,
            has_document=has_doc,
            dynamic=bool(desc.get("enable_dynamic_field")),
        )

    def _partitions(self, name: str) -> list[str]:
        listed = self._call(partial(self._client.list_partitions, name), name)
        return [p for p in listed if p != DEFAULT_PARTITION]

    def describe(self, name: str) -> CollectionConfig:
        lay = self._layout(name)
        return CollectionConfig(
            name=name,
            vectors=lay.vectors,
            payload_schema=lay.payload_schema,
            engine=self.engine,
            engine_version=self.engine_version(),
            options={
                "id_type": "int64" if lay.pk_int else "varchar",
                **self._recorded(name),
                **({"sparse_vectors": {n: {} for n in lay.sparse}} if lay.sparse else {}),
            },
        )

    def _recorded(self, name: str) -> dict[str, Any]:
        """The collection's schema, indexes and partitions (:func:`recorded_options`)."""
        desc = self._call(partial(self._client.describe_collection, name), name)
        indexes = {
            iname: self._call(partial(self._client.describe_index, name, index_name=iname), name)
            for iname in self._call(partial(self._client.list_indexes, name), name)
        }
        return recorded_options(desc, indexes, self._partitions(name))

    def count(self, name: str) -> int:
        if not self._has(name):
            raise not_found(name, self.url)
        res = self._call(
            partial(self._client.query, name, filter="", output_fields=["count(*)"]), name
        )
        return int(res[0]["count(*)"])

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        config = self.describe(name)
        lay = self._layout(name)
        self._call(partial(self._client.load_collection, name), name)
        cut = CutInfo(method="count-check", count_before=self.count(name))

        # partition by partition where records have partitions of their own to go back to
        parts: list[str | None] = [DEFAULT_PARTITION, *lay.partitions] if lay.partitions else [None]

        def gen() -> Iterator[pa.RecordBatch]:
            for part in parts:
                it = self._call(
                    partial(
                        self._client.query_iterator,
                        name,
                        batch_size=batch_size,
                        output_fields=["*"],
                        partition_names=[part] if part else None,
                    ),
                    name,
                )
                try:
                    while True:
                        rows = self._call(it.next, name)
                        if not rows:
                            break
                        if part and part != DEFAULT_PARTITION:
                            rows = [{**dict(r), PARTITION_KEY: part} for r in rows]
                        yield to_batch(config, lay, rows)
                finally:
                    it.close()

        return self._count_checked(name, cut, gen())

    def check_compatible(self, config: CollectionConfig) -> None:
        super().check_compatible(config)
        for v in config.vectors:
            if v.name in (ID, DOCUMENT, VECTOR) or (v.name and not _NAME.fullmatch(v.name)):
                raise IncompatibleTarget(f"milvus: a vector cannot be named {v.name!r}")

    def check_name(self, name: str) -> None:
        check_name_pattern(
            name, _NAME, self.engine, "letters, digits and _, not starting with a digit"
        )

    def _create(self, config: CollectionConfig, name: str) -> None:
        """The recorded schema (same engine, same vectors: :mod:`.milvus_schema`) with
        its partitions, else drkit's layout."""
        recorded = config.options.get("schema") if config.engine == self.engine else None
        same = isinstance(recorded, dict) and fits(recorded, config)
        build = recorded_schema if same else default_schema
        schema, index = build(self._client, self._types, config)
        with exists_as(name, "already exist"):
            self._call(
                partial(self._client.create_collection, name, schema=schema, index_params=index)
            )
        for p in config.options.get("partitions", []) if same else []:
            self._call(partial(self._client.create_partition, name, p), name)

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Inserts of up to ``max_batch`` entities, however the caller cut the records
        (:func:`regroup`). Milvus Lite's upsert keeps old dynamic fields, so ids that may
        be there already are deleted first; into a collection empty at the start, a batch
        none of whose ids this call wrote is inserted without (a restore's every batch). A
        repeated id within a batch keeps its last row."""
        config = self.describe(name)
        lay = self._layout(name)
        written = 0
        conformed = (conform(config, b, name) for b in batches)
        empty = self.count(name) == 0
        for batch, _, fresh in import_groups(conformed, self.capabilities.max_batch, empty):
            rows, into = to_rows(config, lay, batch)
            if not fresh:
                keys = [r[lay.pk] for r in rows]
                self._call(partial(self._client.delete, name, filter=in_filter(lay.pk, keys)), name)
            for part in sorted(set(into)):
                some = [r for r, p in zip(rows, into, strict=True) if p == part]
                self._call(partial(self._client.insert, name, some, partition_name=part), name)
            written += len(batch)
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
        return self.search_many(name, [vector], k, using=using, effort=effort)[0]

    def search_many(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        k: int,
        *,
        using: str = "",
        effort: int | None = None,
    ) -> list[list[str]]:
        """Up to :data:`QUERIES_PER_CALL` vectors in one ``search`` call."""
        lay = self._layout(name)
        field = using or VECTOR
        if field not in lay.vfields:
            raise IncompatibleTarget(f"collection {name!r} has no vector {using!r}")
        self._call(partial(self._client.load_collection, name), name)
        extra: dict[str, Any] = {}
        if effort:
            index = next(v.index for v in lay.vectors if (v.name or VECTOR) == field)
            params = effort_params(str(index.get("index_type", "AUTOINDEX")), index, effort, k)
            if params:
                extra["search_params"] = {"params": params}
        out: list[list[str]] = []
        for chunk in chunks(vectors, QUERIES_PER_CALL):
            res = self._call(
                partial(
                    self._client.search,
                    name,
                    data=[[float(x) for x in v] for v in chunk],
                    anns_field=field,
                    limit=k,
                    output_fields=[lay.pk],
                    **extra,
                ),
                name,
            )
            out.extend([str(hit["entity"][lay.pk]) for hit in hits] for hits in res)
        return out

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        lay = self._layout(name)
        keys: list[Any] = [int(i) for i in ids] if lay.pk_int else list(ids)
        for chunk in chunks(keys, self.capabilities.max_batch):
            self._call(partial(self._client.delete, name, filter=in_filter(lay.pk, chunk)), name)

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        if self._absent(name, self._has(name), missing_ok=missing_ok):
            return
        self._call(partial(self._client.drop_collection, name), name)

    def rename(self, name: str, new_name: str) -> None:
        self.check_name(new_name)
        if not self._has(name):
            raise not_found(name, self.url)
        if self._has(new_name):
            raise exists_error(new_name)
        self._call(partial(self._client.rename_collection, name, new_name), name)

    def aliases(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for c in self.list_collections():
            res = self._call(partial(self._client.list_aliases, c), c)
            out.update(dict.fromkeys(res.get("aliases") or [], c))
        return out

    def move_alias(self, alias: str, collection: str) -> None:
        """``alter_alias``: atomic for every reader of the alias (``create_alias`` when
        there is no such alias yet)."""
        if collection not in self.list_collections():
            raise not_found(collection, self.url)
        call = self._client.alter_alias if alias in self.aliases() else self._client.create_alias
        self._call(partial(call, collection, alias), collection)

    def close(self) -> None:
        self._client.close()
