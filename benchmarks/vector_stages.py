"""What bounds the vector pipelines: each stage's CPU cost per GB, the floor they add up to
on this machine's cores, and how far the real pipelines are from it.

Usage::

    .venv/bin/python benchmarks/vector_stages.py                           # 200k x 768
    .venv/bin/python benchmarks/vector_stages.py --records 1000000 --dim 768 --json

The records are ``benchmarks/vectors.py``'s (float32 vectors, small payloads, documents).
Each stage of a snapshot (record hashes, Arrow IPC segments, cutting them into blobs, the
blob ids, compression + encryption, writing the packs) and of a restore (reading, decryption
+ decompression, the blob id check, Arrow decoding, the record hash check) runs alone, on
one thread, over all the records; its CPU time (``thread_time``, so other work on a noisy
machine counts less than in wall time) is reported per GB of canonical Arrow bytes.

The floor is the sum of the stages spread perfectly over the cores (``os.cpu_count()``):
no pipeline on this machine can beat it without doing less work per byte. The real
pipelines (``snapshot_collection`` and ``read_records`` over the in-memory engine, so the
engine's own export does not count) are measured in the same run and reported against it.
The floor at 1M x 768 next to issue 19's targets (400 MB/s snapshot, 500 MB/s restore) says
whether a target is within reach of this code's work per byte or needs less work per byte
(a cheaper record hash, no compression trial on incompressible floats, ...).

``DRKIT_NATIVE=0`` measures the same with blake3-py's hasher per record in place of the
batched native one (run the two alternately: ``docs/vector-stores.md`` has the figures).
Stages measured alone touch fresh memory that the pipelines reuse, so on a quiet machine the
pipelines can beat the floor: it is an upper bound on the work, not a law.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from vectors import batches

from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.vectors import native, open_snapshot, read_records, snapshot_collection
from drkit.replication.vectors.layout import (
    HASH,
    SEGMENT_BYTES,
    decode_arrow,
    encode_arrow,
    record_hashes,
    segment_pieces,
    segment_schema,
)
from drkit.repository import KdfParams, Repository, codec

PASSWORD = "benchmark password"


def cpu(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and the CPU seconds this thread spent in it."""
    t = time.thread_time()
    out = fn(*args)
    return out, time.thread_time() - t


def _segments(table: pa.Table, rows: int) -> list[memoryview]:
    return [encode_arrow(table.slice(i, rows)) for i in range(0, len(table), rows)]


def _write(path: Path, stored: list[bytes | bytearray]) -> None:
    with open(path, "wb") as f:
        for s in stored:
            f.write(s)


def _read(path: Path, sizes: list[int]) -> list[bytes]:
    with open(path, "rb") as f:
        return [f.read(n) for n in sizes]


def _join(plain: list[bytes | memoryview], seg_sizes: list[int]) -> list[bytes]:
    joined, at = [], 0
    for size in seg_sizes:
        chunk: list[bytes | memoryview] = []
        while sum(len(c) for c in chunk) < size:
            chunk.append(plain[at])
            at += 1
        joined.append(b"".join(chunk))
    return joined


def _check(cfg: CollectionConfig, tables: list[pa.Table], canonical: list[str]) -> None:
    for t in tables:
        expected = t.column(HASH).to_pylist()
        for b in t.select(canonical).to_batches(max_chunksize=5000):
            if record_hashes(cfg, b) != expected[: len(b)]:
                raise AssertionError("hash mismatch")
            expected = expected[len(b) :]


def stages(cfg: CollectionConfig, data: list[pa.RecordBatch], root: Path) -> dict[str, float]:
    """CPU seconds of each stage over all of ``data``, one thread (each stage's input is
    dropped once the next has its output, so 1M x 768 fits in memory)."""
    out: dict[str, float] = {}
    hashes, out["snapshot: record hashes"] = cpu(lambda: [record_hashes(cfg, b) for b in data])
    schema = segment_schema(cfg)
    table = pa.Table.from_batches(
        [
            pa.RecordBatch.from_arrays([*b.columns, pa.array(h, pa.binary(16))], schema=schema)
            for b, h in zip(data, hashes, strict=True)
        ],
        schema=schema,
    )
    per_segment = max(1, SEGMENT_BYTES // max(1, table.nbytes // len(table)))
    segs, out["snapshot: Arrow IPC segments"] = cpu(_segments, table, per_segment)
    del table, hashes
    parts, out["snapshot: cut into blobs (mode sampled)"] = cpu(
        lambda s: [p for one in s for p in segment_pieces(one, cfg)], segs
    )
    _, out["snapshot: blob ids (BLAKE3)"] = cpu(lambda ps: [codec.blob_id(p) for p, _ in ps], parts)
    repo = Repository.init(
        LocalStore(root / "stage-repo", fsync=False), PASSWORD, kdf=KdfParams.fast()
    )
    cipher = repo.cipher
    pieces = [(p, m if m is not None else codec.choose_mode(p[: codec.SAMPLE])) for p, m in parts]
    stored, out["snapshot: compress + encrypt"] = cpu(
        lambda ps: [codec.encode(p, m, cipher) for p, m in ps], pieces
    )
    sizes, seg_sizes = [len(p) for p, _ in pieces], [len(s) for s in segs]
    del parts, pieces, segs
    pack = root / "packs.bin"
    _, out["snapshot: write packs (page cache)"] = cpu(_write, pack, stored)
    back, out["restore: read packs"] = cpu(_read, pack, [len(s) for s in stored])
    del stored
    plain, out["restore: decrypt + decompress"] = cpu(
        lambda bs: [codec.decode(b, n, cipher) for b, n in zip(bs, sizes, strict=True)], back
    )
    del back
    _, out["restore: blob id check"] = cpu(lambda ps: [codec.blob_id(p) for p in ps], plain)
    joined, out["restore: join blobs"] = cpu(_join, plain, seg_sizes)
    del plain
    tables, out["restore: Arrow decoding"] = cpu(
        lambda js: [decode_arrow(j, "segment") for j in js], joined
    )
    del joined
    canonical = [f for f in schema.names if f != HASH]
    _, out["restore: record hash check"] = cpu(_check, cfg, tables, canonical)
    repo.close()
    return out


def real(cfg: CollectionConfig, data: list[pa.RecordBatch], root: Path) -> tuple[float, float]:
    """Seconds of the real snapshot pipeline and restore pipeline (memory engine)."""
    store = open_vector_store("memory://stages")
    store.create(cfg)
    store.import_batches("docs", data)
    repo = Repository.init(LocalStore(root / "repo", fsync=False), PASSWORD, kdf=KdfParams.fast())
    snap = snapshot_collection(repo, store, "docs", component="kb", batch_size=5000)
    opened = open_snapshot(repo, snap.snapshot)
    t = time.perf_counter()
    for _ in read_records(repo, opened, batch_size=5000):
        pass
    read_s = time.perf_counter() - t
    repo.close()
    store.close()
    return snap.pipeline_s, read_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = CollectionConfig(name="docs", vectors=(VectorField("", args.dim, Metric.COSINE),))
    data = batches(cfg, args.records, seed=1)
    gb = sum(b.nbytes for b in data) / 1e9
    cores = os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="drkit-stages-"))
    try:
        cost = stages(cfg, data, root)
        snap_s, read_s = real(cfg, data, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result: dict[str, Any] = {
        "records": args.records,
        "dim": args.dim,
        "canonical_gb": round(gb, 3),
        "cores": cores,
        "record_hasher": "native" if native.available() else "blake3-py",
        "cpu_s_per_gb": {k: round(v / gb, 3) for k, v in cost.items()},
    }
    for side, real_s, target in (("snapshot", snap_s, 400), ("restore", read_s, 500)):
        total = sum(v for k, v in cost.items() if k.startswith(side))
        floor = gb * 1e3 / (total / cores)
        achieved = gb * 1e3 / real_s
        result[side] = {
            "cpu_s_per_gb": round(total / gb, 3),
            "floor_mb_s": round(floor, 1),
            "achieved_mb_s": round(achieved, 1),
            "achieved_of_floor": round(achieved / floor, 3),
            "target_mb_s": target,
        }
    result["uptime"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.records} x {args.dim}: {gb:.3f} GB canonical, {cores} cores, "
        f"record hasher {result['record_hasher']}, load {result['uptime']}"
    )
    for k, v in result["cpu_s_per_gb"].items():
        print(f"  {k:45s} {v:7.3f} CPU s/GB")
    for side in ("snapshot", "restore"):
        r = result[side]
        print(
            f"{side:8s} {r['cpu_s_per_gb']:.2f} CPU s/GB -> floor {r['floor_mb_s']} MB/s on "
            f"{cores} cores; achieved {r['achieved_mb_s']} MB/s ({r['achieved_of_floor']:.0%} of "
            f"the floor); target {r['target_mb_s']}"
        )


if __name__ == "__main__":
    main()
