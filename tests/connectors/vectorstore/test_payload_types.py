"""Every payload type through every pair of engines (issue 10 item 2).

Lists, nulls, nested objects, booleans, large integers, unicode, empty strings and empty
lists/objects: each engine that holds JSON payloads gives them back exactly, into itself
and into every other such engine. Chroma (flat metadata) takes scalars and lists of one
scalar type, and refuses the rest before writing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    VectorStore,
    make_batch,
)
from drkit.connectors.vectorstore.transfer import copy_collection
from drkit.errors import IncompatibleTarget

from .data import as_dict

ENGINES = ["memory", "qdrant", "chroma", "pgvector", "lancedb", "milvus"]
PAIRS = [(a, b) for a in ENGINES for b in ENGINES]

FLAT: list[dict[str, Any]] = [
    {"s": "", "u": "日本語 ✓ ü \"quoted\" 'single'", "b": True, "f": False},
    {"big": 2**62 + 1, "neg": -(2**53) - 7, "x": 0.25},
    {"tags": ["a", "ü", ""], "ns": [1, 2, 3], "bs": [True, False]},
    {},
    {"only": "one key"},
]
NESTED: list[dict[str, Any]] = [
    {"n": None, "deep": {"x": [1, {"y": None}], "e": {}}, "el": []},
    {"mixed": [1, "a", None, {"k": [True]}], "obj": {"ü": "日本"}},
]


def batch_of(cfg: CollectionConfig, payloads: list[dict[str, Any]]) -> Any:
    n = len(payloads)
    vecs = np.random.default_rng(9).standard_normal((n, 4)).astype(np.float32)
    docs = [None if i % 2 else f"doc {i} ✓" for i in range(n)]
    return make_batch(cfg, [f"r{i}" for i in range(n)], {"": vecs}, payloads, docs)


@pytest.mark.parametrize(("src_engine", "dst_engine"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_payload_type_every_pair(
    open_store: Callable[[str], VectorStore], name: str, src_engine: str, dst_engine: str
) -> None:
    src = open_store(src_engine)
    dst = src if src_engine == dst_engine else open_store(dst_engine)
    cfg = CollectionConfig(name=name, vectors=(VectorField("", 4, Metric.L2),))
    nested_ok = src.capabilities.nested_payload
    payloads = FLAT + (NESTED if nested_ok else [])
    batch = batch_of(cfg, payloads)
    src.create(cfg)
    src.import_batches(name, [batch])
    assert as_dict(src.export(name)) == as_dict([batch])
    target = name + "t"
    if nested_ok and not dst.capabilities.nested_payload:
        with pytest.raises(IncompatibleTarget):
            copy_collection(src, name, dst, target)
        assert target not in dst.list_collections()
        assert not [c for c in dst.list_collections() if "_drkit_tmp_" in c]
        return
    copy_collection(src, name, dst, target)
    assert as_dict(dst.export(target)) == as_dict([batch])
