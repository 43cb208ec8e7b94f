"""The vector-store interface: collections of (id, vectors, payload, document) records.

Every engine connector (Qdrant, Chroma, pgvector, LanceDB, Milvus, the in-memory store)
implements :class:`VectorStore` and passes the one conformance suite in
``tests/connectors/vectorstore/``. Records cross the interface as Arrow record batches in
one **canonical schema** (see :func:`arrow_schema`), so a collection exported from one
engine imports into any other.

Canonical record schema, in this column order:

``id``            ``string`` not null. Engines with integer or UUID keys render them as
                  decimal / lowercase hyphenated UUID text.
``vector``        ``fixed_size_list<float32>[dim]`` for the default (unnamed) vector;
``vector.NAME``   one more column per named vector (engines that have them).
``payload``       ``string`` not null: the record's metadata as **canonical JSON**
                  (:func:`canonical_json`: sorted keys, no whitespace, UTF-8, no NaN).
                  A JSON string instead of an Arrow struct because payloads are
                  schemaless and differ record by record; a struct column would need one
                  schema for all records and change whenever a key is added. Canonical
                  text also gives a stable per-record hash. DuckDB reads it with
                  ``json_extract``.
``document``      ``string`` nullable: the record's source text where the engine keeps one.

Errors (see :mod:`drkit.errors`): an engine that cannot be reached raises
:class:`EngineUnreachable` (also mid-export: a stream never ends early without an
error); a missing collection :class:`CollectionNotFound`; creating an existing one
:class:`CollectionExists`; a config or record the engine cannot hold
:class:`IncompatibleTarget`, raised by :meth:`VectorStore.check_compatible` *before*
anything is written.

This module is the interface and its contracts only. Around it: :mod:`.records` (the
canonical batch format), :mod:`.collection` (configs), :mod:`.stream` (export streams
and their consistency report), :mod:`.support` (helpers the connectors share),
:mod:`.transfer` (moving collections between stores). Names are re-exported here.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from drkit.connectors.vectorstore.collection import (
    CollectionConfig,
    ConsistentCut,
    Metric,
    VectorField,
)
from drkit.connectors.vectorstore.records import (
    DOCUMENT,
    ID,
    PAYLOAD,
    SPARSE_KEY,
    VECTOR,
    arrow_schema,
    canonical_json,
    check_batch,
    check_flat_payload,
    conform,
    make_batch,
    normalise,
    payloads_of,
    vector_column,
    vectors_of,
)
from drkit.connectors.vectorstore.stream import CutInfo, ExportStream, count_checked
from drkit.connectors.vectorstore.support import (
    brute_force_top_k,
    check_name_pattern,
    chunks,
    exists_as,
    exists_error,
    not_found,
)
from drkit.errors import IncompatibleTarget

#: How ``restore --replace`` puts a restored collection under the live name
#: (:meth:`VectorStore.swap_in`):
#:
#: ``exchange``  one atomic step for every reader (pgvector: both renames in one
#:               transaction; LanceDB: one exchange of the two table directories)
#: ``alias``     atomic when the application addresses the collection through an alias:
#:               the alias is moved to the restored collection in one call (Milvus
#:               ``alter_alias``, Qdrant ``update_collection_aliases``); a real collection
#:               name is swapped by two renames
#: ``renames``   two renames: the live name is missing for the moment between them
SwapMode = Literal["exchange", "alias", "renames"]


@dataclass(frozen=True, slots=True)
class Swap:
    """What :meth:`VectorStore.swap_in` did."""

    #: readers of the live name saw the previous collection or the new one, never neither
    atomic: bool
    #: how: ``transaction``, ``exchange``, ``alias``, ``renames``
    method: str
    #: the name the previous collection has now (dropped once the new one checks out)
    previous: str
    #: why the swap was not atomic ("" when it was)
    caveat: str = ""

    def says(self) -> str:
        """``atomic`` or ``not atomic: <why>`` (the CLI's and ``--json``'s wording)."""
        return "atomic" if self.atomic else f"not atomic: {self.caveat}"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do; callers read this instead of checking types."""

    #: Several vectors per record under names (Qdrant, Milvus, pgvector, LanceDB).
    named_vectors: bool
    #: The engine stores cosine-metric vectors normalised to unit length (Qdrant), so an
    #: export returns ``v / |v|`` rather than what was imported.
    normalises_cosine: bool
    #: How :meth:`VectorStore.export` gets a consistent cut (see :class:`ExportStream`).
    consistent_cut: ConsistentCut
    #: Largest batch one engine call takes; ``import_batches`` splits bigger batches.
    max_batch: int
    #: ``rename`` is atomic (restore imports under a temporary name, then renames).
    atomic_rename: bool
    #: Cosine-metric vectors come back within float32 rounding (about 1 ulp) of what was
    #: imported, not bit-exact (Chroma rebuilds them from its normalised HNSW copy).
    cosine_roundoff: bool = False
    #: Payload values may be nested objects/lists and null (Chroma: flat scalars only).
    nested_payload: bool = True
    #: Metrics the engine supports.
    metrics: frozenset[Metric] = frozenset(Metric)
    #: :meth:`VectorStore.search` takes ``effort=`` (the candidate list of an approximate
    #: index per query: HNSW ``ef``, IVF probes), so a restore test can search a healthy
    #: approximate index close to exactly (Milvus, pgvector, Qdrant).
    search_effort: bool = False
    #: sparse vectors (``options["sparse_vectors"]``, ``__drkit_sparse.NAME`` in the
    #: canonical payload) become the engine's own sparse vectors (Qdrant, Milvus, pgvector)
    sparse_vectors: bool = False
    #: How ``restore --replace`` swaps a restored collection in (see :data:`SwapMode`).
    swap: SwapMode = "renames"
    #: Why a swap by renames is not atomic on this engine (``restore --replace`` says it).
    renames_caveat: str = "the live name is missing for the moment between two renames"


class VectorStore(abc.ABC):
    """A set of named collections in one vector engine.

    Connectors import their engine library lazily (inside ``__init__``), so drkit's core
    works without the extras installed.
    """

    #: The store URL without credentials (safe to log).
    url: str
    #: Short engine name: ``qdrant``, ``chroma``, ``pgvector``, ``lancedb``, ``milvus``, ``memory``.
    engine: str
    capabilities: Capabilities

    @abc.abstractmethod
    def engine_version(self) -> str:
        """The engine's version string. Raises :class:`EngineUnreachable`."""

    @abc.abstractmethod
    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""

    @abc.abstractmethod
    def describe(self, name: str) -> CollectionConfig:
        """The collection's config. Raises :class:`CollectionNotFound`."""

    @abc.abstractmethod
    def count(self, name: str) -> int:
        """Exact number of records. Raises :class:`CollectionNotFound`."""

    @abc.abstractmethod
    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        """Stream every record as canonical batches of at most ``batch_size`` rows.

        Raises :class:`CollectionNotFound` at once (not on first ``next``). An engine
        that goes away mid-stream raises :class:`EngineUnreachable` from ``next``; the
        stream never just ends early. Order is unspecified. The consistency of the cut
        is reported in ``stream.cut`` per ``capabilities.consistent_cut``.
        """

    @abc.abstractmethod
    def _create(self, config: CollectionConfig, name: str) -> None:
        """Engine-specific create; ``config`` was checked already."""

    def create(self, config: CollectionConfig, name: str | None = None) -> None:
        """Create an empty collection ``name`` (default ``config.name``) from ``config``.

        Checks the config first (:meth:`check_compatible`), so an incompatible config
        raises :class:`IncompatibleTarget` with nothing written. An existing collection
        raises :class:`CollectionExists`. Not idempotent.
        """
        target = name or config.name
        self.check_name(target)
        self.check_compatible(config)
        if target in self.list_collections():
            raise exists_error(target)
        self._create(config, target)

    def check_name(self, name: str) -> None:
        """Raise :class:`IncompatibleTarget` if ``name`` is not a valid collection name here."""
        if not name:
            raise IncompatibleTarget("a collection needs a name")

    def check_compatible(self, config: CollectionConfig) -> None:
        """Raise :class:`IncompatibleTarget` if this engine cannot hold ``config``."""
        caps = self.capabilities
        if not config.vectors:
            raise IncompatibleTarget(f"collection {config.name!r} has no vector field")
        named = [v for v in config.vectors if v.name]
        if len(config.vectors) > 1 and not caps.named_vectors:
            raise IncompatibleTarget(
                f"{config.name!r} has {len(config.vectors)} named vectors "
                f"({', '.join(v.name for v in named)}); {self.engine} holds one vector per record",
                hint="restore into an engine with named vectors (Qdrant, Milvus, pgvector)",
            )
        for v in config.vectors:
            if v.metric not in caps.metrics:
                raise IncompatibleTarget(
                    f"{self.engine} does not support metric {v.metric.value!r} "
                    f"(vector {v.name or 'default'!r})"
                )
            if v.dimension <= 0:
                raise IncompatibleTarget(f"vector {v.name or 'default'!r}: dimension must be > 0")

    @abc.abstractmethod
    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Upsert canonical batches into an existing collection; return rows written.

        A record whose id exists is replaced whole (payload keys not in the new record do
        not survive). Raises :class:`CollectionNotFound`, and :class:`IncompatibleTarget`
        for batches whose vector columns or dimensions do not match the collection or
        whose payload the engine cannot hold (checked per batch before writing it).
        Not atomic across batches: restore imports under a temporary name for that.
        """

    @abc.abstractmethod
    def search(self, name: str, vector: Sequence[float], k: int, *, using: str = "") -> list[str]:
        """Ids of the ``k`` nearest records to ``vector`` by the collection's metric, best first.

        ``using`` names the vector field ("" = the default). Engines answer with their
        index (approximate); drkit uses this for golden queries. Connectors whose
        ``capabilities.search_effort`` is set also take ``effort: int | None = None``
        (keyword): the candidate list an approximate index searches per query (HNSW
        ``ef``, IVF probes), ``None`` for the engine's default. Raises
        :class:`CollectionNotFound`.
        """

    def search_many(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        k: int,
        *,
        using: str = "",
        effort: int | None = None,
    ) -> list[list[str]]:
        """:meth:`search` for each of ``vectors``, in their order: the same ids in the same
        order as one :meth:`search` per vector, in as few engine calls as the engine allows.

        ``effort`` is passed to :meth:`search` where ``capabilities.search_effort`` is set;
        other engines answer at their default. The default loops over :meth:`search`;
        engines that answer many queries in one call override it. Raises what
        :meth:`search` raises (also for an empty ``vectors``: :class:`CollectionNotFound`).
        """
        search: Any = self.search  # takes effort= where capabilities.search_effort
        kw = {"effort": effort} if effort is not None and self.capabilities.search_effort else {}
        if not vectors:
            self.count(name)  # a missing collection raises as search would
            return []
        return [search(name, v, k, using=using, **kw) for v in vectors]

    @abc.abstractmethod
    def delete_ids(self, name: str, ids: Sequence[str]) -> None:
        """Delete records by id. Idempotent: missing ids are ignored.

        Raises :class:`CollectionNotFound`.
        """

    @abc.abstractmethod
    def drop(self, name: str, *, missing_ok: bool = False) -> None:
        """Delete the collection and its records.

        Raises :class:`CollectionNotFound` unless ``missing_ok``.
        """

    def rename(self, name: str, new_name: str) -> None:
        """Rename a collection; atomic where ``capabilities.atomic_rename``.

        Raises :class:`CollectionNotFound`, :class:`CollectionExists`. The default
        copies and drops (not atomic; restore cleans up after a failed copy).
        """
        config = self.describe(name)
        if new_name in self.list_collections():
            raise exists_error(new_name)
        self._create(config, new_name)
        try:
            self.import_batches(new_name, self.export(name))
        except BaseException:
            self.drop(new_name, missing_ok=True)
            raise
        self.drop(name)

    def aliases(self) -> dict[str, str]:
        """Every alias of the store and the collection it names; ``{}`` for engines
        without aliases (``capabilities.swap != "alias"``)."""
        return {}

    def move_alias(self, alias: str, collection: str) -> None:
        """Point the existing ``alias`` at ``collection`` in one atomic step.

        Raises :class:`CollectionNotFound` (``collection``, or no such alias) and
        :class:`IncompatibleTarget` on engines without aliases.
        """
        raise IncompatibleTarget(f"{self.engine} has no collection aliases")

    def swap_in(self, new: str, name: str, old: str) -> Swap:
        """Put collection ``new`` under the live name ``name``; say how (:class:`Swap`).

        When ``name`` is an alias (:meth:`aliases`), the alias is moved to ``new``
        (atomic), then any other alias of the same collection, and the previous
        collection keeps its own name (``Swap.previous``).
        Otherwise ``name`` is renamed to ``old`` and ``new`` to ``name``: the default is
        two renames (each atomic where ``capabilities.atomic_rename``), the first undone
        when the second fails, and aliases that named the live collection are moved to
        the new one. Raises :class:`CollectionNotFound`, :class:`CollectionExists`
        (``old``).
        """
        aliases = self.aliases()
        behind = aliases.get(name)
        if behind is not None:
            self.move_alias(name, new)
            # the application's other aliases of the same collection follow (each atomic)
            for alias in sorted(a for a, c in aliases.items() if c == behind and a != name):
                self.move_alias(alias, new)
            return Swap(True, "alias", behind)
        self.rename(name, old)
        try:
            self.rename(new, name)
        except BaseException:
            self.rename(old, name)
            raise
        for alias in sorted(a for a, c in aliases.items() if c == name):
            self.move_alias(alias, name)  # the application's aliases follow the live name
        return Swap(False, "renames", old, self.capabilities.renames_caveat)

    def _count_checked(
        self, name: str, cut: CutInfo, batches: Iterator[pa.RecordBatch]
    ) -> ExportStream:
        """An export stream for a ``count-check`` engine (see :func:`count_checked`)."""
        return ExportStream(
            count_checked(cut, batches, lambda: self.count(name), self.engine, name), cut
        )

    def _absent(self, name: str, exists: bool, *, missing_ok: bool) -> bool:
        """For ``drop``: True if there is nothing to drop; raises unless ``missing_ok``."""
        if exists:
            return False
        if missing_ok:
            return True
        raise not_found(name, self.url)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections; the store is unusable afterwards."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


#: The interface module also re-exports the record format (``records``), the config types
#: (``collection``), export streams (``stream``) and the connectors' helpers (``support``).
__all__ = [
    "DOCUMENT",
    "ID",
    "PAYLOAD",
    "SPARSE_KEY",
    "VECTOR",
    "Capabilities",
    "CollectionConfig",
    "ConsistentCut",
    "CutInfo",
    "ExportStream",
    "Metric",
    "Swap",
    "SwapMode",
    "VectorField",
    "VectorStore",
    "arrow_schema",
    "brute_force_top_k",
    "canonical_json",
    "check_batch",
    "check_flat_payload",
    "check_name_pattern",
    "chunks",
    "conform",
    "count_checked",
    "exists_as",
    "exists_error",
    "make_batch",
    "normalise",
    "not_found",
    "payloads_of",
    "vector_column",
    "vectors_of",
]
