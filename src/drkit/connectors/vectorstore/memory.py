"""An in-memory vector store: first-class for unit tests, rehearsals and the demo.

``memory://NAME`` opens a named store shared within the process (so two opens of the
same URL see the same collections); ``memory://`` opens a private one. Exports pin a
copy of the collection taken when ``export`` is called (a consistent cut).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    ID,
    Capabilities,
    CollectionConfig,
    CutInfo,
    ExportStream,
    VectorStore,
    arrow_schema,
    brute_force_top_k,
    conform,
    exists_error,
    not_found,
    vectors_of,
)
from drkit.errors import IncompatibleTarget

_SHARED: dict[str, _State] = {}
_SHARED_LOCK = threading.Lock()


@dataclass
class _Collection:
    config: CollectionConfig
    #: id -> one canonical row (a 1-row table keeps types exact)
    rows: dict[str, pa.RecordBatch] = field(default_factory=dict)
    version: int = 0


@dataclass
class _State:
    collections: dict[str, _Collection] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryVectorStore(VectorStore):
    engine = "memory"
    capabilities = Capabilities(
        named_vectors=True,
        normalises_cosine=False,
        consistent_cut="version-pin",
        max_batch=100_000,
        atomic_rename=True,
    )

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        name = url.removeprefix("memory://").strip("/")
        if name:
            with _SHARED_LOCK:
                self._state = _SHARED.setdefault(name, _State())
        else:
            self._state = _State()

    def engine_version(self) -> str:
        from drkit import __version__

        return f"drkit-memory-{__version__}"

    def _get(self, name: str) -> _Collection:
        try:
            return self._state.collections[name]
        except KeyError:
            raise not_found(name, self.url) from None

    def list_collections(self) -> list[str]:
        return sorted(self._state.collections)

    def describe(self, name: str) -> CollectionConfig:
        c = self._get(name)
        return CollectionConfig(
            name=name,
            vectors=c.config.vectors,
            payload_schema=c.config.payload_schema,
            engine=self.engine,
            engine_version=self.engine_version(),
        )

    def count(self, name: str) -> int:
        return len(self._get(name).rows)

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        c = self._get(name)
        with self._state.lock:
            rows = list(c.rows.values())
            cut = CutInfo(method="version-pin", version=str(c.version), count_before=len(rows))
        schema = arrow_schema(c.config)

        def gen() -> Iterator[pa.RecordBatch]:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                table = pa.Table.from_batches(chunk, schema=schema).combine_chunks()
                batch = table.to_batches()[0] if len(table) else None
                if batch is not None:
                    cut.rows += len(batch)
                    yield batch
            cut.count_after = cut.count_before
            cut.complete = True

        return ExportStream(gen(), cut)

    def _create(self, config: CollectionConfig, name: str) -> None:
        with self._state.lock:
            if name in self._state.collections:
                raise exists_error(name)
            self._state.collections[name] = _Collection(config=config.renamed(name))

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        c = self._get(name)
        written = 0
        for batch in batches:
            batch = conform(c.config, batch, name)
            with self._state.lock:
                for i, rid in enumerate(batch.column(ID).to_pylist()):
                    c.rows[rid] = batch.slice(i, 1)
                c.version += 1
            written += len(batch)
        return written

    def search(self, name: str, vector: Sequence[float], k: int, *, using: str = "") -> list[str]:
        c = self._get(name)
        field = next((v for v in c.config.vectors if v.name == using), None)
        if field is None:
            raise IncompatibleTarget(f"collection {name!r} has no vector {using!r}")
        rows = list(c.rows.values())
        if not rows:
            return []
        table = pa.Table.from_batches(rows).combine_chunks()
        matrix = vectors_of(table.to_batches()[0], field.column)
        ids = table.column(ID).to_pylist()
        return [ids[i] for i in brute_force_top_k(matrix, np.asarray(vector), field.metric, k)]

    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        c = self._get(name)
        with self._state.lock:
            for i in ids:
                c.rows.pop(i, None)
            c.version += 1

    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        with self._state.lock:
            if self._state.collections.pop(name, None) is None and not missing_ok:
                raise not_found(name, self.url)

    def rename(self, name: str, new_name: str) -> None:
        with self._state.lock:
            if name not in self._state.collections:
                raise not_found(name, self.url)
            if new_name in self._state.collections:
                raise exists_error(new_name)
            c = self._state.collections.pop(name)
            c.config = c.config.renamed(new_name)
            self._state.collections[new_name] = c
