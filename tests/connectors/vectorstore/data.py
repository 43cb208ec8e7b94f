"""Generated records and exact comparison helpers for the vector-store tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    Capabilities,
    CollectionConfig,
    Metric,
    VectorField,
    make_batch,
    normalise,
)


def config(
    name: str, dim: int = 8, metric: Metric = Metric.COSINE, named: tuple[str, ...] = ()
) -> CollectionConfig:
    vectors = [VectorField("", dim, metric)]
    vectors += [VectorField(n, dim // 2, Metric.DOT) for n in named]
    return CollectionConfig(name=name, vectors=tuple(vectors))


def ids(n: int) -> list[str]:
    """A mix of id kinds: decimal, UUID, free text with unicode and punctuation."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(str(i))
        elif kind == 1:
            out.append(f"00000000-0000-4000-8000-{i:012d}")
        elif kind == 2:
            out.append(f"doc-{i}/ünï'κ")
        else:
            out.append(f"chunk#{i}")
    return out


def payload(i: int, flat: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"i": i, "f": i / 4, "s": f"text {i} ✓", "b": i % 2 == 0}
    if i % 5 == 0:
        p = {}  # empty payloads exist too
    if not flat and i % 3 == 0:
        p["nested"] = {"tags": ["a", "b"], "n": None, "deep": {"x": [1, 2.5]}}
    return p


def records(
    cfg: CollectionConfig, n: int, *, flat: bool = False, seed: int = 0, start: int = 0
) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    vecs = {v.name: rng.standard_normal((n, v.dimension)).astype(np.float32) for v in cfg.vectors}
    docs = [None if i % 3 == 0 else f"document {i}" for i in range(start, start + n)]
    return make_batch(
        cfg,
        ids(start + n)[start:],
        vecs,
        [payload(i, flat) for i in range(start, start + n)],
        docs,
    )


def as_dict(batches: Iterable[pa.RecordBatch]) -> dict[str, dict[str, Any]]:
    """id -> {column: value}, payload parsed; fails on duplicate ids."""
    out: dict[str, dict[str, Any]] = {}
    for b in batches:
        for row in b.to_pylist():
            rid = row.pop("id")
            assert rid not in out, f"id {rid!r} exported twice"
            row["payload"] = json.loads(row["payload"])
            out[rid] = row
    return out


def assert_same_records(
    got: dict[str, dict[str, Any]],
    expected: dict[str, dict[str, Any]],
    cfg: CollectionConfig,
    caps: Iterable[Capabilities],
) -> None:
    """Payloads and documents exactly; vectors exactly, or by direction where a
    cosine-normalising engine was on the way (within float32 rounding where one rounds)."""
    caps = list(caps)
    normalised = any(c.normalises_cosine for c in caps)
    roundoff = any(c.cosine_roundoff for c in caps)
    assert sorted(got) == sorted(expected)
    for rid, exp in expected.items():
        row = got[rid]
        assert row["payload"] == exp["payload"], rid
        assert row["document"] == exp["document"], rid
        for v in cfg.vectors:
            g = np.asarray(row[v.column], dtype=np.float32)[None, :]
            e = np.asarray(exp[v.column], dtype=np.float32)[None, :]
            if v.metric is Metric.COSINE and normalised:
                # by direction: Qdrant local gives unit vectors until the client is
                # reopened and the vectors as given after (a restore's rename reopens it)
                np.testing.assert_allclose(normalise(g), normalise(e), rtol=1e-6, atol=1e-7)
            elif v.metric is Metric.COSINE and roundoff:
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
            else:
                assert np.array_equal(g, e), (rid, v.column)
