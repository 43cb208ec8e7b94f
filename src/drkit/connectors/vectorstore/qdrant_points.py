"""How a canonical record becomes a Qdrant point (split from :mod:`.qdrant`): its point
id (an unsigned integer or a UUID as it is, any other id mapped to a UUIDv5 with the
original in the payload), its vectors, sparse vectors and multivectors."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    SPARSE_KEY,
    CollectionConfig,
    payloads_of,
    vectors_of,
)

DRKIT_NAMESPACE = uuid.UUID("6f1c9d2e-5b1a-4c47-9a0e-d7c4a1e2f3b4")
ID_KEY = "__drkit_id"
DOC_KEY = "__drkit_document"
MULTI_KEY = "__drkit_multivector."
_UINT = re.compile(r"(0|[1-9][0-9]{0,19})")


def point_id(rid: str) -> tuple[int | str, bool]:
    """The Qdrant point id for a canonical id, and whether it had to be mapped."""
    if _UINT.fullmatch(rid) and int(rid) < 2**64:
        return int(rid), False
    try:
        if str(uuid.UUID(rid)) == rid:
            return rid, False
    except ValueError:
        pass
    return str(uuid.uuid5(DRKIT_NAMESPACE, rid)), True


def to_points(
    models: Any, config: CollectionConfig, batch: pa.RecordBatch, doc_key: str
) -> list[Any]:
    """The points of ``batch``'s canonical records (the document under ``doc_key``)."""
    vecs = {v.name: vectors_of(batch, v.column) for v in config.vectors}
    ids = batch.column(ID).to_pylist()
    docs = batch.column(DOCUMENT).to_pylist()
    points = []
    for i, (rid, payload) in enumerate(zip(ids, payloads_of(batch), strict=True)):
        pid, mapped = point_id(rid)
        if mapped:
            payload[ID_KEY] = rid
        if docs[i] is not None:
            payload[doc_key] = docs[i]
        extra = extra_vectors(models, config, payload)
        if len(vecs) == 1 and "" in vecs and not extra:
            vector: Any = vecs[""][i].tolist()
        else:
            vector = {k: arr[i].tolist() for k, arr in vecs.items()} | extra
        points.append(models.PointStruct(id=pid, vector=vector, payload=payload))
    return points


def extra_vectors(models: Any, config: CollectionConfig, payload: dict[str, Any]) -> dict[str, Any]:
    """Sparse vectors and multivectors the collection has, out of the payload."""
    out: dict[str, Any] = {}
    for sname in config.options.get("sparse_vectors", {}):
        sv = payload.pop(SPARSE_KEY + sname, None)
        if sv is not None:
            out[sname] = models.SparseVector(indices=sv["indices"], values=sv["values"])
    for mname in config.options.get("multivectors", {}):
        mv = payload.pop(MULTI_KEY + mname, None)
        if mv is not None:
            out[mname] = mv
    return out
