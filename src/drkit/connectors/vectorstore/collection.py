"""Collection configs: what an engine says about a collection, as plain data.

:class:`CollectionConfig` is stored in every vector snapshot (``to_json``), so a
collection can be re-created in any engine; engine-specific extras (recorded schemas,
index settings) live in ``options`` and ``VectorField.index`` and are used only by the
same engine (see :func:`drkit.connectors.vectorstore.transfer.not_carried`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from drkit.connectors.vectorstore.records import vector_column
from drkit.errors import IncompatibleTarget


class Metric(StrEnum):
    """Distance metrics, normalised across engines."""

    COSINE = "cosine"
    DOT = "dot"
    L2 = "l2"


ConsistentCut = Literal["version-pin", "transaction", "count-check"]


@dataclass(frozen=True, slots=True)
class VectorField:
    """One vector of a record. ``name == ""`` is the default (unnamed) vector."""

    name: str
    dimension: int
    metric: Metric
    #: Engine index parameters as plain JSON data (``{"type": "hnsw", "m": 16, ...}``).
    #: Informational across engines; the same engine re-creates the index from it.
    index: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return vector_column(self.name)


@dataclass(frozen=True, slots=True)
class CollectionConfig:
    """What an engine says about a collection; enough to re-create it elsewhere."""

    name: str
    vectors: tuple[VectorField, ...]
    #: Declared payload fields -> engine type name, where the engine declares any
    #: (Qdrant payload indexes, Milvus/pgvector/LanceDB columns). Chroma declares none.
    payload_schema: Mapping[str, str] = field(default_factory=dict)
    engine: str = ""
    engine_version: str = ""
    #: Engine-specific extras, plain JSON data (for example pgvector's id column type).
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def default(self) -> VectorField:
        """The default vector, or the only one; raises if the choice is ambiguous."""
        for v in self.vectors:
            if v.name == "":
                return v
        if len(self.vectors) == 1:
            return self.vectors[0]
        raise IncompatibleTarget(f"collection {self.name!r} has several named vectors")

    @property
    def dimension(self) -> int:
        return self.default.dimension

    @property
    def metric(self) -> Metric:
        return self.default.metric

    def renamed(self, name: str) -> CollectionConfig:
        return CollectionConfig(
            name=name,
            vectors=self.vectors,
            payload_schema=self.payload_schema,
            engine=self.engine,
            engine_version=self.engine_version,
            options=self.options,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vectors": [
                {
                    "name": v.name,
                    "dimension": v.dimension,
                    "metric": v.metric.value,
                    "index": dict(v.index),
                }
                for v in self.vectors
            ],
            "payload_schema": dict(self.payload_schema),
            "engine": self.engine,
            "engine_version": self.engine_version,
            "options": dict(self.options),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionConfig:
        try:
            vectors = tuple(
                VectorField(
                    name=str(v["name"]),
                    dimension=int(v["dimension"]),
                    metric=Metric(v["metric"]),
                    index=dict(v.get("index", {})),
                )
                for v in data["vectors"]
            )
            return cls(
                name=str(data["name"]),
                vectors=vectors,
                payload_schema=dict(data.get("payload_schema", {})),
                engine=str(data.get("engine", "")),
                engine_version=str(data.get("engine_version", "")),
                options=dict(data.get("options", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IncompatibleTarget(f"malformed collection config: {exc}") from exc
