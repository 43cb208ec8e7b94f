"""Qdrant connector (``qdrant+local:///PATH``, ``qdrant+memory://``, ``qdrant+http://H:P``).

Consistent cut: **count-check**. Qdrant has no read snapshot for scroll; the export
counts before and after and checks that every id came exactly once (Qdrant's own
snapshot API is server-only and engine-specific). In local mode only one client may
open a path, so nobody else writes during an export anyway.

Mapping to the canonical format:

- Point ids are unsigned integers or UUIDs. Canonical ids that are neither (``"doc-1"``)
  are stored under ``uuid5(DRKIT_NAMESPACE, id)`` with the original id in the payload key
  ``__drkit_id``; export maps them back and removes the key.
- Qdrant has no document text; a document is kept in the payload key
  ``__drkit_document`` and given back as ``document`` on export. Applications that keep
  their text under their own key name it with ``?document_key=KEY`` on the URL (the
  plan's ``vector_stores[].document_key``): a string under that key is the document.
- COSINE collections store vectors normalised to unit length
  (``capabilities.normalises_cosine``).
- Rename on a local path (``qdrant+local``) moves the collection's directory and
  rewrites ``meta.json`` (client closed meanwhile), so a restore writes every point
  once, instead of into a temporary collection and again into a copy
  (:func:`.qdrant_local.move_collection`).
- Unnamed (``""``) and named dense vectors map one to one. The Manhattan metric is
  refused with :class:`IncompatibleTarget`.
- Sparse vectors and multivectors (hybrid search, ColBERT) have no column in the
  canonical format: they travel in the payload, as ``__drkit_sparse.NAME``
  (``{"indices": [...], "values": [...]}``) and ``__drkit_multivector.NAME`` (a list of
  vectors), and their config in ``options``. A restore into Qdrant recreates them as
  vectors; sparse vectors go into Milvus as ``SPARSE_FLOAT_VECTOR`` fields and into
  pgvector as ``sparsevec`` columns (and come back from them); other engines keep them
  as payload (``not_carried`` reports it). A collection needs one dense vector.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    SPARSE_KEY,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    Metric,
    VectorField,
    VectorStore,
    chunks,
    conform,
    exists_error,
    make_batch,
    not_found,
)
from drkit.connectors.vectorstore.failures import guarded
from drkit.connectors.vectorstore.qdrant_local import bulk_writes, move_collection
from drkit.connectors.vectorstore.qdrant_points import (
    DOC_KEY,
    ID_KEY,
    MULTI_KEY,
    point_id,
    to_points,
)
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

#: vectors :meth:`QdrantStore.search_many` sends in one ``query_batch_points``
QUERIES_PER_CALL = 1000

T = TypeVar("T")


class QdrantStore(VectorStore):
    engine = "qdrant"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=True,
        consistent_cut="count-check",
        max_batch=1000,
        atomic_rename=False,
        sparse_vectors=True,
        swap="alias",
        renames_caveat="the live name is a collection, not an alias, and Qdrant has no "
        "collection rename: the previous collection was copied aside and the restored one "
        "copied in under the live name, missing in between; address the collection through "
        "an alias to have it swapped atomically",
    )

    def __init__(self, url: str) -> None:
        from qdrant_client import QdrantClient, models

        self._models = models
        self.url = url
        parts = urlsplit(url)
        #: the payload key that holds the document text
        self._doc_key = parse_qs(parts.query).get("document_key", [DOC_KEY])[0]
        #: the storage directory of a local-mode store on disk
        self._path: Path | None = None
        try:
            if parts.scheme == "qdrant+memory":
                self._client = QdrantClient(location=":memory:")
                self._local = True
            elif parts.scheme == "qdrant+local":
                self._client = guarded(lambda: QdrantClient(path=parts.path), self.engine, url)
                self._local = True
                self._path = Path(parts.path)
                self.capabilities = replace(
                    self.capabilities,
                    atomic_rename=True,
                    renames_caveat="the live name is a collection, not an alias: local mode "
                    "moved the collection directories with the client closed (no other client "
                    "can open the path meanwhile); address the collection through an alias to "
                    "have it swapped atomically",
                )
            else:
                scheme = parts.scheme.split("+")[1]
                self._client = QdrantClient(url=f"{scheme}://{parts.netloc}", timeout=30)
                self._local = False
                # a server's HNSW takes ``hnsw_ef`` per query; local mode searches
                # exhaustively and warns about (ignored) search params
                self.capabilities = replace(self.capabilities, search_effort=True)
        except RuntimeError as exc:  # local path locked by another client
            raise EngineUnreachable(f"cannot open {url}: {exc}") from exc

    # -- error translation ---------------------------------------------------------------

    def _call(self, fn: Callable[[], T], name: str | None = None) -> T:
        try:
            return guarded(fn, self.engine, self.url)  # held locks, permissions
        except VectorStoreError:
            raise
        except ValueError as exc:  # local mode: "Collection x not found"
            if name is not None and "not found" in str(exc):
                raise not_found(name, self.url) from exc
            raise IncompatibleTarget(f"qdrant refused the request: {exc}") from exc
        except Exception as exc:
            from qdrant_client.http.exceptions import (
                ResponseHandlingException,
                UnexpectedResponse,
            )

            if isinstance(exc, UnexpectedResponse) and exc.status_code == 404 and name:
                raise not_found(name, self.url) from exc
            if isinstance(exc, ResponseHandlingException | ConnectionError | OSError):
                raise EngineUnreachable(f"qdrant at {self.url} is unreachable: {exc}") from exc
            if type(exc).__module__.startswith(("httpx", "httpcore", "grpc")):
                raise EngineUnreachable(f"qdrant at {self.url} is unreachable: {exc}") from exc
            raise

    def engine_version(self) -> str:
        if self._local:
            return f"qdrant-client-local {package_version('qdrant-client')}"
        return str(self._call(lambda: self._client.info().version))

    def list_collections(self) -> list[str]:
        res = self._call(self._client.get_collections)
        return sorted(c.name for c in res.collections)

    def _exists(self, name: str) -> bool:
        return bool(self._call(lambda: self._client.collection_exists(name)))

    def describe(self, name: str) -> CollectionConfig:
        if not self._exists(name):
            raise not_found(name, self.url)
        info = self._call(lambda: self._client.get_collection(name), name)
        params = info.config.params
        sparse = {
            sname: {"modifier": getattr(sp.modifier, "value", sp.modifier) if sp else None}
            for sname, sp in (params.sparse_vectors or {}).items()
        }
        multi: dict[str, Any] = {}
        raw = params.vectors
        named = {"": raw} if not isinstance(raw, dict) else raw
        hnsw = info.config.hnsw_config
        vectors = []
        for vname, vp in named.items():
            if vp is None:
                continue
            if vp.multivector_config is not None:
                multi[vname] = {
                    "size": int(vp.size),
                    "distance": getattr(vp.distance, "value", vp.distance),
                    "comparator": getattr(
                        vp.multivector_config.comparator, "value", vp.multivector_config.comparator
                    ),
                }
                continue
            h = vp.hnsw_config or hnsw
            vectors.append(
                VectorField(
                    name=vname,
                    dimension=int(vp.size),
                    metric=self._metric(vp.distance, name),
                    index={"type": "hnsw", "m": h.m, "ef_construct": h.ef_construct},
                )
            )
        schema = {
            k: str(getattr(v.data_type, "value", v.data_type))
            for k, v in (info.payload_schema or {}).items()
        }
        if not vectors:
            raise IncompatibleTarget(
                f"qdrant collection {name!r} has no dense vector (drkit needs one per record)"
            )
        options: dict[str, Any] = {}
        if sparse:
            options["sparse_vectors"] = sparse
        if multi:
            options["multivectors"] = multi
        return CollectionConfig(
            name=name,
            vectors=tuple(vectors),
            payload_schema=schema,
            engine=self.engine,
            engine_version=self.engine_version(),
            options=options,
        )

    def _metric(self, distance: Any, name: str) -> Metric:
        d = self._models.Distance
        table = {d.COSINE: Metric.COSINE, d.DOT: Metric.DOT, d.EUCLID: Metric.L2}
        if distance not in table:
            raise IncompatibleTarget(f"qdrant collection {name!r} uses {distance} (unsupported)")
        return table[distance]

    def count(self, name: str) -> int:
        if not self._exists(name):
            raise not_found(name, self.url)
        return int(self._call(lambda: self._client.count(name, exact=True).count, name))

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        config = self.describe(name)
        cut = CutInfo(method="count-check", count_before=self.count(name))

        def gen() -> Iterator[pa.RecordBatch]:
            def page(offset: Any) -> tuple[list[Any], Any]:
                return self._call(
                    lambda: self._client.scroll(
                        name, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
                    ),
                    name,
                )

            offset: Any = None
            while True:
                points, offset = page(offset)
                if points:
                    yield self._to_batch(config, points)
                if offset is None:
                    return

        return self._count_checked(name, cut, gen())

    def _to_batch(self, config: CollectionConfig, points: list[Any]) -> pa.RecordBatch:
        ids: list[str] = []
        payloads: list[dict[str, Any]] = []
        docs: list[str | None] = []
        vecs: dict[str, list[Any]] = {v.name: [] for v in config.vectors}
        for p in points:
            payload = dict(p.payload or {})
            ids.append(str(payload.pop(ID_KEY, p.id)))
            doc = payload.get(self._doc_key)
            docs.append(payload.pop(self._doc_key) if isinstance(doc, str) else None)
            payloads.append(payload)
            vector = p.vector if isinstance(p.vector, dict) else {"": p.vector}
            for v in config.vectors:
                vecs[v.name].append(vector[v.name])
            for sname in config.options.get("sparse_vectors", {}):
                sv = vector.get(sname)
                if sv is not None:
                    payload[SPARSE_KEY + sname] = {
                        "indices": [int(i) for i in sv.indices],
                        "values": [float(x) for x in sv.values],
                    }
            for mname in config.options.get("multivectors", {}):
                if vector.get(mname) is not None:
                    payload[MULTI_KEY + mname] = [[float(x) for x in row] for row in vector[mname]]
        return make_batch(config, ids, vecs, payloads, docs)

    def _create(self, config: CollectionConfig, name: str) -> None:
        m = self._models
        dist = {
            Metric.COSINE: m.Distance.COSINE,
            Metric.DOT: m.Distance.DOT,
            Metric.L2: m.Distance.EUCLID,
        }

        def params(v: VectorField) -> Any:
            hnsw = None
            if config.engine == self.engine and v.index.get("type") == "hnsw":
                hnsw = m.HnswConfigDiff(
                    m=v.index.get("m"), ef_construct=v.index.get("ef_construct")
                )
            return m.VectorParams(size=v.dimension, distance=dist[v.metric], hnsw_config=hnsw)

        same = config.engine == self.engine
        multi = config.options.get("multivectors", {}) if same else {}
        # sparse vectors come from any engine that has them (Milvus); their modifier
        # only from Qdrant
        sparse = {
            sname: sp if same else {"modifier": None}
            for sname, sp in config.options.get("sparse_vectors", {}).items()
        }
        if len(config.vectors) == 1 and config.vectors[0].name == "" and not multi:
            vectors_config: Any = params(config.vectors[0])
        else:
            vectors_config = {v.name: params(v) for v in config.vectors}
            for mname, mv in multi.items():
                vectors_config[mname] = m.VectorParams(
                    size=mv["size"],
                    distance=m.Distance(mv["distance"]),
                    multivector_config=m.MultiVectorConfig(
                        comparator=m.MultiVectorComparator(mv["comparator"])
                    ),
                )
        sparse_config = {
            sname: m.SparseVectorParams(
                modifier=m.Modifier(sp["modifier"]) if sp["modifier"] else None
            )
            for sname, sp in sparse.items()
        } or None
        if self._path is not None:  # a directory left by a rename cut short is no collection
            orphan = self._path / "collection" / name
            if orphan.is_dir() and not self._exists(name):
                shutil.rmtree(orphan)
        self._call(
            lambda: self._client.create_collection(
                name, vectors_config=vectors_config, sparse_vectors_config=sparse_config
            )
        )

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        config = self.describe(name)
        empty = self._path is not None and self.count(name) == 0  # a restore's new collection
        written = 0
        with bulk_writes(self._client, self._path if empty else None, name):
            for big in batches:
                big = conform(config, big, name)
                for start in range(0, len(big), self.capabilities.max_batch):
                    batch = big.slice(start, self.capabilities.max_batch)
                    self._upsert(name, to_points(self._models, config, batch, self._doc_key))
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
        """Up to :data:`QUERIES_PER_CALL` vectors in one ``query_batch_points`` call."""
        if not self._exists(name):
            raise not_found(name, self.url)
        m = self._models
        params = None
        if effort and self.capabilities.search_effort:
            params = m.SearchParams(hnsw_ef=max(effort, k))
        out: list[list[str]] = []
        for chunk in chunks(vectors, QUERIES_PER_CALL):
            requests = [
                m.QueryRequest(
                    query=[float(x) for x in v],
                    using=using or None,
                    limit=k,
                    with_payload=[ID_KEY],
                    params=params,
                )
                for v in chunk
            ]
            res = self._call(
                partial(self._client.query_batch_points, name, requests=requests), name
            )
            out.extend([str((p.payload or {}).get(ID_KEY, p.id)) for p in r.points] for r in res)
        return out

    def _upsert(self, name: str, points: list[Any]) -> None:
        self._call(partial(self._client.upsert, name, points=points, wait=True), name)

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        if not self._exists(name):
            raise not_found(name, self.url)
        pids = [point_id(i)[0] for i in ids]
        for chunk in chunks(pids, self.capabilities.max_batch):
            selector = self._models.PointIdsList(points=chunk)
            self._call(
                partial(self._client.delete, name, points_selector=selector, wait=True), name
            )

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        if self._absent(name, self._exists(name), missing_ok=missing_ok):
            return
        self._call(lambda: self._client.delete_collection(name), name)

    def rename(self, name: str, new_name: str) -> None:
        if self._path is None:
            super().rename(name, new_name)
            return
        from qdrant_client import QdrantClient

        if not self._exists(name):
            raise not_found(name, self.url)
        if self._exists(new_name):
            raise exists_error(new_name)
        self.check_name(new_name)
        self._client.close()  # releases the storage lock; meta.json is ours to rewrite
        try:
            move_collection(self._path, name, new_name)
        finally:
            try:
                self._client = QdrantClient(path=str(self._path))
            except RuntimeError as exc:  # another client took the path meanwhile
                raise EngineUnreachable(f"cannot reopen {self.url}: {exc}") from exc

    def aliases(self) -> dict[str, str]:
        res = self._call(self._client.get_aliases)
        return {a.alias_name: a.collection_name for a in res.aliases}

    def move_alias(self, alias: str, collection: str) -> None:
        """Delete and create the alias in one ``update_collection_aliases`` call: atomic
        for every reader of the alias."""
        m = self._models
        if collection not in self.list_collections():
            raise not_found(collection, self.url)
        ops: list[Any] = []
        if alias in self.aliases():
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)))
        create = m.CreateAlias(collection_name=collection, alias_name=alias)
        ops.append(m.CreateAliasOperation(create_alias=create))
        self._call(
            partial(self._client.update_collection_aliases, change_aliases_operations=ops),
            collection,
        )

    def close(self) -> None:
        self._client.close()
