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
fields of the old entity, so import deletes the ids first, then inserts.

Same-engine restore: describe records the collection's schema (every field with its
type, params, nullability, partition key; primary key name and type; the dynamic
flag), its indexes (type, metric, params, scalar indexes too) and its partitions in
``options``; a restore into Milvus recreates them, so an INT64 ``pk`` stays INT64 and
declared fields stay declared, and records go back to their partitions (below). Not
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

import json
import logging
import re
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
    make_batch,
    not_found,
    payloads_of,
    vectors_of,
)
from drkit.connectors.vectorstore.failures import engine_failure, guarded, logged_cause
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

T = TypeVar("T")
_METRICS = {"COSINE": Metric.COSINE, "IP": Metric.DOT, "L2": Metric.L2}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
ID_MAX = 1024
DOC_MAX = 65535
#: payload keys that collide with a schema field are stored under this prefix
KEY_ESCAPE = "__drkit_key_"
#: sparse vectors in the canonical payload (as Qdrant's connector writes them)
SPARSE_KEY = "__drkit_sparse."
#: the payload key that carries a record's partition (see the module docstring)
PARTITION_KEY = "__drkit_partition"
DEFAULT_PARTITION = "_default"
#: describe_index keys that are state, not settings
_INDEX_STATE = {"index_name", "total_rows", "indexed_rows", "pending_index_rows", "state"}


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
            try:
                self._client: Any = MilvusClient(uri=uri, timeout=30)
            except Exception as exc:
                cause = logged[-1] if logged else exc
                err = engine_failure(cause, self.engine, url)
                raise err or EngineUnreachable(f"milvus at {url} is unreachable: {exc}") from cause

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

    def _layout(self, name: str) -> dict[str, Any]:
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
                metric = _METRICS.get(str(idx.get("metric_type", "L2")).upper(), Metric.L2)
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
        partitions = [] if keyed else self._partitions(name)
        return {
            "pk": pk,
            "pk_int": pk_type == t.INT64,
            #: the collection's own partitions records are routed to (none when a
            #: partition key places them)
            "partitions": partitions,
            "vectors": vectors,
            "vfields": vfields,
            #: SPARSE_FLOAT_VECTOR fields (``__drkit_sparse.NAME`` in the canonical payload)
            "sparse": sparse,
            "payload_schema": schema,
            "has_document": has_doc,
            "dynamic": bool(desc.get("enable_dynamic_field")),
        }

    def _partitions(self, name: str) -> list[str]:
        listed = self._call(partial(self._client.list_partitions, name), name)
        return [p for p in listed if p != DEFAULT_PARTITION]

    def describe(self, name: str) -> CollectionConfig:
        lay = self._layout(name)
        return CollectionConfig(
            name=name,
            vectors=tuple(lay["vectors"]),
            payload_schema=lay["payload_schema"],
            engine=self.engine,
            engine_version=self.engine_version(),
            options={
                "id_type": "int64" if lay["pk_int"] else "varchar",
                **self._recorded(name),
                **({"sparse_vectors": {n: {} for n in lay["sparse"]}} if lay["sparse"] else {}),
            },
        )

    def _recorded(self, name: str) -> dict[str, Any]:
        """The collection's schema, indexes and partitions as JSON data (see the docstring)."""
        desc = self._call(partial(self._client.describe_collection, name), name)
        fields = []
        for f in desc["fields"]:
            field: dict[str, Any] = {
                "name": f["name"],
                "type": str(getattr(f["type"], "name", f["type"])),
                "params": {k: v for k, v in (f.get("params") or {}).items()},
            }
            for key in ("is_primary", "nullable", "is_partition_key"):
                if f.get(key):
                    field[key] = True
            if f.get("element_type") is not None:
                field["element_type"] = str(getattr(f["element_type"], "name", f["element_type"]))
            if f.get("default_value") is not None:
                field["default_value"] = _plain(f["default_value"])
            fields.append(field)
        indexes = {}
        for iname in self._call(partial(self._client.list_indexes, name), name):
            idx = self._call(partial(self._client.describe_index, name, index_name=iname), name)
            if idx:
                indexes[iname] = {k: _plain(v) for k, v in idx.items() if k not in _INDEX_STATE}
        partitions = self._partitions(name)
        return {
            "schema": {"fields": fields, "dynamic": bool(desc.get("enable_dynamic_field"))},
            "indexes": indexes,
            "partitions": partitions,
        }

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
        parts: list[str | None] = (
            [DEFAULT_PARTITION, *lay["partitions"]] if lay["partitions"] else [None]
        )

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
                        yield self._to_batch(config, lay, rows)
                finally:
                    it.close()

        return self._count_checked(name, cut, gen())

    @staticmethod
    def _to_batch(config: CollectionConfig, lay: dict[str, Any], rows: list[Any]) -> pa.RecordBatch:
        skip = {lay["pk"], *lay["vfields"], *lay["sparse"]}
        if lay["has_document"]:
            skip.add(DOCUMENT)
        ids = [str(r[lay["pk"]]) for r in rows]
        vecs = {
            v.name: [r[f] for r in rows]
            for v, f in zip(config.vectors, lay["vfields"], strict=True)
        }
        payloads = [
            {k.removeprefix(KEY_ESCAPE): v for k, v in dict(r).items() if k not in skip}
            for r in rows
        ]
        for r, payload in zip(rows, payloads, strict=True):
            for sname in lay["sparse"]:
                sv = _sparse_of(r.get(sname))
                if sv:
                    keys = sorted(sv)
                    payload[SPARSE_KEY + sname] = {
                        "indices": keys,
                        "values": [float(sv[i]) for i in keys],
                    }
        docs = [r.get(DOCUMENT) for r in rows] if lay["has_document"] else None
        return make_batch(config, ids, vecs, payloads, docs)

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
        recorded = config.options.get("schema") if config.engine == self.engine else None
        if isinstance(recorded, dict) and self._fits(recorded, config):
            self._create_recorded(config, name)
            return
        from pymilvus import MilvusClient

        t = self._types
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(ID, t.VARCHAR, is_primary=True, max_length=ID_MAX)
        index = self._client.prepare_index_params()
        metric = {m: k for k, m in _METRICS.items()}
        for v in config.vectors:
            field = v.name or VECTOR
            schema.add_field(field, t.FLOAT_VECTOR, dim=v.dimension)
            index.add_index(field, index_type="AUTOINDEX", metric_type=metric[v.metric])
        for sname in config.options.get("sparse_vectors", {}):
            schema.add_field(sname, t.SPARSE_FLOAT_VECTOR)
            index.add_index(sname, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        schema.add_field(DOCUMENT, t.VARCHAR, max_length=DOC_MAX, nullable=True)
        with exists_as(name, "already exist"):
            self._call(
                partial(self._client.create_collection, name, schema=schema, index_params=index)
            )

    @staticmethod
    def _fits(recorded: dict[str, Any], config: CollectionConfig) -> bool:
        """The recorded schema still has the config's vectors (a mapping may rename)."""
        vecs = {
            f["name"]: f["params"].get("dim")
            for f in recorded["fields"]
            if f["type"] == "FLOAT_VECTOR"
        }
        return vecs == {v.name or VECTOR: v.dimension for v in config.vectors}

    def _create_recorded(self, config: CollectionConfig, name: str) -> None:
        from pymilvus import MilvusClient

        t = self._types
        recorded = config.options["schema"]
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=recorded["dynamic"])
        for f in recorded["fields"]:
            kwargs: dict[str, Any] = dict(f["params"])
            for key in ("is_primary", "nullable", "is_partition_key", "default_value"):
                if key in f:
                    kwargs[key] = f[key]
            if "element_type" in f:
                kwargs["element_type"] = t[f["element_type"]]
                if f["element_type"] == "VARCHAR":
                    kwargs.setdefault("max_length", DOC_MAX)  # Milvus Lite does not report it
            schema.add_field(f["name"], t[f["type"]], **kwargs)
        index = self._client.prepare_index_params()
        metric = {m: k for k, m in _METRICS.items()}
        by_field = {i["field_name"]: (n, i) for n, i in config.options.get("indexes", {}).items()}
        for f in recorded["fields"]:
            n, idx = by_field.get(f["name"], (None, None))
            if idx is None and f["type"] != "FLOAT_VECTOR":
                continue
            v = next((v for v in config.vectors if (v.name or VECTOR) == f["name"]), None)
            kwargs = {"index_type": (idx or {}).get("index_type", "AUTOINDEX")}
            if v is not None:
                kwargs["metric_type"] = metric[v.metric]
            elif (idx or {}).get("metric_type"):  # a sparse vector's index (IP, BM25)
                kwargs["metric_type"] = idx["metric_type"]
            skip = ("field_name", "index_type", "metric_type", "params")
            params = dict((idx or {}).get("params") or {})
            params |= {k: v for k, v in (idx or {}).items() if k not in skip}
            if params:
                kwargs["params"] = params
            index.add_index(f["name"], index_name=n or "", **kwargs)
        with exists_as(name, "already exist"):
            self._call(
                partial(self._client.create_collection, name, schema=schema, index_params=index)
            )
        for p in config.options.get("partitions", []):
            self._call(partial(self._client.create_partition, name, p), name)

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        config = self.describe(name)
        lay = self._layout(name)
        reserved = {lay["pk"], *lay["vfields"], *lay["sparse"], DOCUMENT, "$meta"}
        partitions = set(lay["partitions"])
        written = 0
        for big in batches:
            big = conform(config, big, name)
            for start in range(0, len(big), self.capabilities.max_batch):
                batch = big.slice(start, self.capabilities.max_batch)
                vecs = {v.name: vectors_of(batch, v.column) for v in config.vectors}
                ids = batch.column(ID).to_pylist()
                docs = batch.column(DOCUMENT).to_pylist()
                rows = []
                into: list[str] = []
                for i, payload in enumerate(payloads_of(batch)):
                    sparse = {n: payload.pop(SPARSE_KEY + n, None) for n in lay["sparse"]}
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
                    row[lay["pk"]] = int(ids[i]) if lay["pk_int"] else ids[i]
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
                    for v, f in zip(config.vectors, lay["vfields"], strict=True):
                        row[f] = vecs[v.name][i].tolist()
                    if lay["has_document"]:
                        row[DOCUMENT] = docs[i]
                    rows.append(row)
                # Milvus Lite's upsert keeps old dynamic fields: delete, then insert
                keys = [r[lay["pk"]] for r in rows]
                self._call(partial(self._client.delete, name, filter=_in(lay["pk"], keys)), name)
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
        lay = self._layout(name)
        field = using or VECTOR
        if field not in lay["vfields"]:
            raise IncompatibleTarget(f"collection {name!r} has no vector {using!r}")
        self._call(partial(self._client.load_collection, name), name)
        extra: dict[str, Any] = {}
        if effort:
            index = next(v.index for v in lay["vectors"] if (v.name or VECTOR) == field)
            params = _effort_params(str(index.get("index_type", "AUTOINDEX")), index, effort, k)
            if params:
                extra["search_params"] = {"params": params}
        res = self._call(
            partial(
                self._client.search,
                name,
                data=[[float(x) for x in vector]],
                anns_field=field,
                limit=k,
                output_fields=[lay["pk"]],
                **extra,
            ),
            name,
        )
        return [str(hit["entity"][lay["pk"]]) for hit in res[0]]

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        lay = self._layout(name)
        keys: list[Any] = [int(i) for i in ids] if lay["pk_int"] else list(ids)
        for chunk in chunks(keys, self.capabilities.max_batch):
            self._call(partial(self._client.delete, name, filter=_in(lay["pk"], chunk)), name)

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


def _plain(value: Any) -> Any:
    """pymilvus values (enums, numbers as text) as plain JSON data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(getattr(value, "name", value))


def _in(field: str, keys: Sequence[Any]) -> str:
    """A ``field in [...]`` filter with properly quoted strings. pymilvus's
    ``delete(ids=...)`` pastes strings between single quotes unescaped, so an id with a
    quote breaks (or changes) the expression."""
    return f"{field} in [{', '.join(json.dumps(k, ensure_ascii=False) for k in keys)}]"


def _effort_params(index_type: str, index: dict[str, Any], effort: int, k: int) -> dict[str, int]:
    """Search params giving an index ``effort`` candidates per query: HNSW (and Milvus
    Lite's AUTOINDEX, an HNSW graph) take ``ef`` (at least ``k``), IVF indexes
    ``nprobe`` (at most their ``nlist``); FLAT and others search exhaustively."""
    kind = index_type.upper()
    if kind in ("HNSW", "AUTOINDEX") or kind.startswith("HNSW"):
        return {"ef": max(effort, k)}
    if kind.startswith("IVF"):
        params = index.get("params")
        nested = params.get("nlist") if isinstance(params, dict) else None
        nlist = int(nested or index.get("nlist") or 0)
        return {"nprobe": max(1, min(effort, nlist) if nlist else effort)}
    return {}


def _sparse_of(value: Any) -> dict[int, float]:
    """A sparse vector as Milvus gives it back ({index: value}, or a 1-row CSR matrix)."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    coo = value.tocoo()  # scipy sparse
    return {int(c): float(v) for c, v in zip(coo.col, coo.data, strict=True)}
