"""Chroma connector (``chroma:///PATH`` embedded, ``chroma+http://HOST:PORT`` server).

Consistent cut: **count-check**. Chroma has no read snapshot; ``get`` pages with
limit/offset, so a concurrent write can shift pages. The export counts before and after
and checks that every id came exactly once; otherwise ``cut.warning`` says so.

Chroma facts that shape the mapping (chromadb 1.x):

- One unnamed vector per record; a dimension is fixed by the first insert, so drkit
  records it in the collection metadata (``drkit:dimension``) at create.
- Metric is the HNSW ``space``: ``cosine`` / ``l2`` / ``ip`` (= dot). Index parameters
  go through ``configuration`` (the legacy ``hnsw:ef_search`` / ``hnsw:ef_construction``
  metadata keys make every insert fail in 1.5). Vectors are stored
  as given (no normalisation).
- Metadata is flat: str, int, float, bool, and non-empty lists of one of those types;
  no nested objects, no null values, and an empty dict is refused (stored as no
  metadata). Other payloads are refused with :class:`IncompatibleTarget`.
- The HNSW settings (``ef_construction``, ``ef_search``, ``max_neighbors``, ...) and the
  application's collection metadata are recorded at export (``index``,
  ``options["metadata"]``) and applied when restoring into Chroma.
- ``upsert`` *merges* metadata (old keys survive), so import deletes existing ids first.
- Cosine-space vectors come back within about 1 ulp, not bit-exact
  (``capabilities.cosine_roundoff``); l2/ip vectors are exact.
- Float metadata comes back rounded to 16 significant digits.
- Collection names: 3-512 characters of ``[a-zA-Z0-9._-]``, starting and ending
  alphanumeric.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    Metric,
    VectorField,
    VectorStore,
    check_flat_payload,
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
from drkit.connectors.vectorstore.failures import guarded
from drkit.connectors.vectorstore.support import import_groups
from drkit.errors import EngineUnreachable, IncompatibleTarget, VectorStoreError

T = TypeVar("T")
#: vectors :meth:`ChromaStore.search_many` sends in one ``query``
QUERIES_PER_CALL = 1000
DIM_KEY = "drkit:dimension"
_SPACES = {"cosine": Metric.COSINE, "l2": Metric.L2, "ip": Metric.DOT}
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


class ChromaStore(VectorStore):
    engine = "chroma"
    capabilities = Capabilities(
        named_vectors=False,
        normalises_cosine=False,
        consistent_cut="count-check",
        max_batch=5000,
        atomic_rename=True,
        cosine_roundoff=True,
        nested_payload=False,
        renames_caveat="Chroma has no aliases and no atomic swap: the live collection was "
        "renamed aside and the restored one renamed in (modify(name=...)), best effort; the "
        "live name was missing in between",
    )

    def __init__(self, url: str) -> None:
        import chromadb
        from chromadb.config import Settings

        self.url = url
        parts = urlsplit(url)
        settings = Settings(anonymized_telemetry=False)
        try:
            if parts.scheme == "chroma":
                self._client: Any = guarded(
                    lambda: chromadb.PersistentClient(path=parts.path, settings=settings),
                    self.engine,
                    url,
                )
            else:
                self._client = chromadb.HttpClient(
                    host=parts.hostname or "127.0.0.1", port=parts.port or 8000, settings=settings
                )
        except ValueError as exc:  # "Could not connect to a Chroma server"
            raise EngineUnreachable(f"chroma at {url} is unreachable: {exc}") from exc

    def _call(self, fn: Callable[[], T], name: str | None = None) -> T:
        try:
            return guarded(fn, self.engine, self.url)  # held locks, permissions
        except VectorStoreError:
            raise
        except Exception as exc:
            from chromadb.errors import ChromaError, NotFoundError

            if isinstance(exc, NotFoundError) and name is not None:
                raise not_found(name, self.url) from exc
            if type(exc).__module__.startswith(("httpx", "httpcore")) or isinstance(
                exc, ConnectionError
            ):
                raise EngineUnreachable(f"chroma at {self.url} is unreachable: {exc}") from exc
            if isinstance(exc, ChromaError | ValueError | TypeError):
                raise IncompatibleTarget(f"chroma refused the request: {exc}") from exc
            raise

    def engine_version(self) -> str:
        return str(self._call(self._client.get_version))

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self._call(self._client.list_collections))

    def _col(self, name: str) -> Any:
        return self._call(lambda: self._client.get_collection(name, embedding_function=None), name)

    def describe(self, name: str) -> CollectionConfig:
        col = self._col(name)
        meta = dict(col.metadata or {})
        conf = col.configuration_json or {}
        hnsw = conf.get("hnsw") or {}
        space = hnsw.get("space") or meta.get("hnsw:space") or "l2"
        dim = meta.get(DIM_KEY) or getattr(col._model, "dimension", None)
        if not dim:
            peek = self._call(lambda: col.get(limit=1, include=["embeddings"]), name)
            if peek["embeddings"] is None or len(peek["embeddings"]) == 0:
                raise IncompatibleTarget(
                    f"chroma collection {name!r} is empty and has no recorded dimension"
                )
            dim = len(peek["embeddings"][0])
        index = {"type": "hnsw"} | {
            k: v for k, v in hnsw.items() if k != "space" and isinstance(v, int | float)
        }
        # the application's own collection metadata (drkit's and the legacy hnsw: keys aside)
        user_meta = {k: v for k, v in meta.items() if k != DIM_KEY and not k.startswith("hnsw:")}
        return CollectionConfig(
            name=name,
            vectors=(VectorField("", int(dim), _SPACES[space], index),),
            engine=self.engine,
            engine_version=self.engine_version(),
            options={"metadata": user_meta} if user_meta else {},
        )

    def count(self, name: str) -> int:
        col = self._col(name)
        return int(self._call(col.count, name))

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        config = self.describe(name)
        col = self._col(name)
        cut = CutInfo(method="count-check", count_before=self.count(name))

        def page(offset: int) -> Any:
            return self._call(
                lambda: col.get(
                    limit=batch_size,
                    offset=offset,
                    include=["embeddings", "metadatas", "documents"],
                ),
                name,
            )

        def gen() -> Iterator[pa.RecordBatch]:
            offset = 0
            while True:
                res = page(offset)
                ids = res["ids"]
                if not ids:
                    return
                metas = [dict(m) if m else {} for m in res["metadatas"] or [None] * len(ids)]
                docs = res["documents"] or [None] * len(ids)
                yield make_batch(config, ids, {"": res["embeddings"]}, metas, docs)
                offset += len(ids)
                if len(ids) < batch_size:
                    return

        return self._count_checked(name, cut, gen())

    def check_name(self, name: str) -> None:
        check_name_pattern(
            name,
            _NAME,
            self.engine,
            "3-512 characters of a-z A-Z 0-9 . _ -, alphanumeric at both ends",
        )

    def _create(self, config: CollectionConfig, name: str) -> None:
        v = config.default
        space = {m: s for s, m in _SPACES.items()}[v.metric]
        # the space goes into the metadata too: chroma 1.5 reads it back from there
        meta: dict[str, Any] = {DIM_KEY: v.dimension, "hnsw:space": space}
        hnsw: dict[str, Any] = {"space": space}
        if config.engine == self.engine:  # index parameters only survive into chroma
            for key in ("ef_construction", "ef_search", "max_neighbors", "sync_threshold"):
                if isinstance(v.index.get(key), int):
                    hnsw[key] = v.index[key]
            if isinstance(v.index.get("resize_factor"), int | float):
                hnsw["resize_factor"] = v.index["resize_factor"]
            user_meta = config.options.get("metadata")
            if isinstance(user_meta, dict):
                meta = {**user_meta, **meta}
        create = partial(
            self._client.create_collection,
            name,
            metadata=meta,
            configuration={"hnsw": hnsw},
            embedding_function=None,
        )
        with exists_as(name, "already exists"):
            self._call(create)

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """``add`` calls of the engine's batch size however the caller cut the records
        (:func:`regroup`: a restore reads ~1,300 at a time). ``upsert`` would merge old
        metadata keys into the new record, so ids that may be there already are looked up
        and deleted first; into a collection empty at the start, a batch none of whose ids
        this call wrote skips the lookup (a restore's every batch). A repeated id within
        a batch keeps its last row (``add`` refuses an id twice)."""
        config = self.describe(name)
        col = self._col(name)
        written = 0
        step = min(self.capabilities.max_batch, self._call(self._client.get_max_batch_size))
        conformed = (conform(config, b, name) for b in batches)
        for batch, ids, fresh in import_groups(conformed, step, self.count(name) == 0):
            payloads = payloads_of(batch)
            for p in payloads:
                check_flat_payload(p, self.engine)
            metas = [p or None for p in payloads]
            if not fresh:
                existing = self._call(partial(col.get, ids=ids, include=[]), name)["ids"]
                if existing:
                    self._call(partial(col.delete, ids=existing), name)
            add = partial(
                col.add,
                ids=ids,
                embeddings=vectors_of(batch, config.default.column),
                metadatas=metas,
                documents=batch.column(DOCUMENT).to_pylist(),
            )
            self._call(add, name)
            written += len(batch)
        return written

    def search(self, name: str, vector: Sequence[float], k: int, *, using: str = "") -> list[str]:
        return self.search_many(name, [vector], k, using=using)[0]

    def search_many(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        k: int,
        *,
        using: str = "",
        effort: int | None = None,
    ) -> list[list[str]]:
        """Up to :data:`QUERIES_PER_CALL` vectors in one ``query`` (``query_embeddings``)."""
        if using:
            raise IncompatibleTarget("chroma collections have one unnamed vector")
        col = self._col(name)
        n = min(k, int(self._call(col.count, name)))
        if n == 0:
            return [[] for _ in vectors]
        out: list[list[str]] = []
        for chunk in chunks(vectors, QUERIES_PER_CALL):
            embeddings = [list(map(float, v)) for v in chunk]
            query = partial(col.query, query_embeddings=embeddings, n_results=n)
            res = self._call(partial(query, include=[]), name)
            out.extend([str(i) for i in ids] for ids in res["ids"])
        return out

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        col = self._col(name)
        for chunk in chunks(ids, self.capabilities.max_batch):
            self._call(partial(col.delete, ids=chunk), name)

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        try:
            self._call(lambda: self._client.delete_collection(name), name)
        except VectorStoreError as exc:
            if missing_ok and type(exc).__name__ == "CollectionNotFound":
                return
            raise

    def rename(self, name: str, new_name: str) -> None:
        self.check_name(new_name)
        col = self._col(name)
        if new_name in self.list_collections():
            raise exists_error(new_name)
        self._call(lambda: col.modify(name=new_name), name)

    def close(self) -> None:
        # chromadb's HTTP client (and its admin client) never close their httpx sessions
        for owner in (self._client, getattr(self._client, "_admin_client", None)):
            session = getattr(getattr(owner, "_server", None), "_session", None)
            if session is not None:
                session.close()
        self._client.close()
