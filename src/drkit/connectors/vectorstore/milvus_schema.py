"""Milvus: a collection's schema, recorded at export and rebuilt by a same-engine restore.

:func:`recorded_options` turns what ``describe_collection``/``describe_index`` report
(every field with its type, params, nullability, partition key; the primary key; the
dynamic flag; every index with its type, metric and params, scalar indexes too; the
partitions) into plain JSON data kept in the collection config's ``options``.
:func:`recorded_schema` builds the schema and index params back from it;
:func:`default_schema` builds drkit's own layout for a config from another engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drkit.connectors.vectorstore.base import DOCUMENT, ID, VECTOR, CollectionConfig, Metric
from drkit.connectors.vectorstore.milvus_rows import DOC_MAX, ID_MAX

METRICS = {"COSINE": Metric.COSINE, "IP": Metric.DOT, "L2": Metric.L2}
#: describe_index keys that are state, not settings
_INDEX_STATE = {"index_name", "total_rows", "indexed_rows", "pending_index_rows", "state"}


def recorded_options(
    desc: dict[str, Any], indexes: dict[str, dict[str, Any]], partitions: list[str]
) -> dict[str, Any]:
    """The collection's schema, indexes and partitions as JSON data (see the docstring):
    ``desc`` from ``describe_collection``, ``indexes`` by name from ``describe_index``."""
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
            field["default_value"] = plain(f["default_value"])
        fields.append(field)
    return {
        "schema": {"fields": fields, "dynamic": bool(desc.get("enable_dynamic_field"))},
        "indexes": {
            iname: {k: plain(v) for k, v in idx.items() if k not in _INDEX_STATE}
            for iname, idx in indexes.items()
            if idx
        },
        "partitions": partitions,
    }


def fits(recorded: dict[str, Any], config: CollectionConfig) -> bool:
    """The recorded schema still has the config's vectors (a mapping may rename)."""
    vecs = {
        f["name"]: f["params"].get("dim") for f in recorded["fields"] if f["type"] == "FLOAT_VECTOR"
    }
    return vecs == {v.name or VECTOR: v.dimension for v in config.vectors}


def default_schema(client: Any, types: Any, config: CollectionConfig) -> tuple[Any, Any]:
    """drkit's layout (see :mod:`.milvus`): schema and index params."""
    from pymilvus import MilvusClient

    t = types
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(ID, t.VARCHAR, is_primary=True, max_length=ID_MAX)
    index = client.prepare_index_params()
    metric = {m: k for k, m in METRICS.items()}
    for v in config.vectors:
        field = v.name or VECTOR
        schema.add_field(field, t.FLOAT_VECTOR, dim=v.dimension)
        index.add_index(field, index_type="AUTOINDEX", metric_type=metric[v.metric])
    for sname in config.options.get("sparse_vectors", {}):
        schema.add_field(sname, t.SPARSE_FLOAT_VECTOR)
        index.add_index(sname, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    schema.add_field(DOCUMENT, t.VARCHAR, max_length=DOC_MAX, nullable=True)
    return schema, index


def recorded_schema(client: Any, types: Any, config: CollectionConfig) -> tuple[Any, Any]:
    """The recorded schema (``options["schema"]``, ``options["indexes"]``) as schema and
    index params."""
    from pymilvus import MilvusClient

    t = types
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
    index = client.prepare_index_params()
    metric = {m: k for k, m in METRICS.items()}
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
    return schema, index


def effort_params(index_type: str, index: Mapping[str, Any], effort: int, k: int) -> dict[str, int]:
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


def plain(value: Any) -> Any:
    """pymilvus values (enums, numbers as text) as plain JSON data."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(getattr(value, "name", value))
