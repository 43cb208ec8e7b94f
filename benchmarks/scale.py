"""How drkit's cost grows with the size of the work (issue 19, item 5).

Usage::

    .venv/bin/python benchmarks/scale.py                          # 1, 4, 16 GiB; 200k, 1M, 2M
    .venv/bin/python benchmarks/scale.py --gib 1 4 --records 200000 1000000
    .venv/bin/python benchmarks/scale.py --only vectors --records 20000 100000   # quick

For each size, one fresh process (so its peak RSS is its own) runs, on generated data:

- **files**: a full backup into a local repository (fsync'd), a restore into a new
  directory, ``check --read-data``. The data is written beforehand by another process
  (float32 arrays in 64 MiB pieces plus 3,000 small JSON files), so generating it costs the
  measured process no memory.
- **vectors**: a LanceDB collection (768-d float32, small payloads, documents) is filled
  beforehand by another process, then snapshotted, restored into a new collection and
  the snapshot's records read back (the restore pipeline alone).

Printed per size: time, throughput (MB/s of the data), peak RSS (MiB) and the
repository's metadata (index objects + tree blobs + pack headers + snapshot files). The
claim under test: throughput is flat and peak RSS is bounded independently of the data
size; metadata grows linearly. ``uptime`` is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drkit.connectors.objectstore.local import LocalStore
from drkit.repository import Repository, backup_path, restore
from drkit.repository.maintenance import check
from repository import DIM, PASSWORD, du, metadata

PIECE = 64 << 20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- data, written by a separate process ---------------------------------------------------


def gen_files(root: Path, size: int, small_files: int = 3000) -> None:
    rng = np.random.default_rng(0)
    arrays = root / "embeddings"
    arrays.mkdir(parents=True)
    per_file = 1 << 30  # 1 GiB files, written in 64 MiB pieces
    left, i = size - size % (DIM * 4), 0  # whole rows
    while left > 0:
        with open(arrays / f"shard-{i:03d}.f32", "wb") as fh:
            file_left = min(per_file - per_file % (DIM * 4), left)
            while file_left > 0:
                rows = min(file_left, PIECE) // (DIM * 4)
                a = rng.standard_normal((rows, DIM), dtype=np.float32)
                a /= np.linalg.norm(a, axis=1, keepdims=True)
                fh.write(a.tobytes())
                file_left -= a.nbytes
                left -= a.nbytes
        i += 1
    for j in range(small_files):
        d = root / "docs" / f"{j % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        words = rng.integers(0, 5000, size=int(rng.integers(20, 600)))
        text = " ".join(f"w{w}" for w in words)
        (d / f"doc-{j:05d}.json").write_text(json.dumps({"id": j, "text": text}))


def _vector_cfg() -> Any:
    from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField

    return CollectionConfig(name="docs", vectors=(VectorField("", DIM, Metric.COSINE),))


def gen_vectors(root: Path, n: int, chunk: int = 20_000) -> None:
    from drkit.connectors.vectorstore.base import make_batch
    from drkit.connectors.vectorstore.registry import open_vector_store

    cfg = _vector_cfg()
    store = open_vector_store(f"lancedb://{root / 'lance'}")
    store.create(cfg)
    rng = np.random.default_rng(1)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        ids = [f"doc-{i}" for i in range(start, start + m)]
        vecs = rng.standard_normal((m, DIM), dtype=np.float32)
        payloads = [
            {"source": f"file-{i % 997}.md", "chunk": i % 50, "lang": "en"}
            for i in range(start, start + m)
        ]
        docs = [f"text of chunk {i}" for i in range(start, start + m)]
        store.import_batches("docs", [make_batch(cfg, ids, {"": vecs}, payloads, docs)])
    store.close()


# --- the measured runs, one process each ---------------------------------------------------


def _meta(repo: Repository, root: Path) -> int:
    m = metadata(repo, root)
    return int(m["index"] + m["snapshots"] + m["trees"] + m["pack_headers"])


def run_files(work: Path) -> dict[str, Any]:
    data = work / "data"
    total = du(data)
    root = work / "repo"
    repo = Repository.init(LocalStore(root), PASSWORD)
    os.sync()
    out: dict[str, Any] = {"data_mb": total / 1e6}
    t = time.perf_counter()
    backup_path(repo, data, component="scale")
    out["backup_s"] = time.perf_counter() - t
    out["rss_after_backup_mib"] = peak_rss_mib()
    out["repo_mb"] = du(root) / 1e6
    out["metadata_mb"] = _meta(repo, root) / 1e6
    os.sync()
    t = time.perf_counter()
    restore(repo, "latest", work / "out")
    out["restore_s"] = time.perf_counter() - t
    shutil.rmtree(work / "out")
    os.sync()
    t = time.perf_counter()
    report = check(repo, read_data=True)
    out["check_s"] = time.perf_counter() - t
    assert report.ok, report.errors
    repo.close()
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def run_vectors(work: Path) -> dict[str, Any]:
    from drkit.connectors.vectorstore.registry import open_vector_store
    from drkit.replication.vectors import (
        open_snapshot,
        read_records,
        restore_collection,
        snapshot_collection,
    )
    from drkit.repository import KdfParams

    store = open_vector_store(f"lancedb://{work / 'lance'}")
    root = work / "repo"
    root.mkdir()
    repo = Repository.init(LocalStore(root), PASSWORD, kdf=KdfParams.fast())
    os.sync()
    t = time.perf_counter()
    snap = snapshot_collection(repo, store, "docs", component="kb", batch_size=5000)
    out: dict[str, Any] = {"snapshot_s": time.perf_counter() - t}
    out["records"] = snap.records
    out["snapshot_pipeline_s"] = snap.pipeline_s
    out["rss_after_snapshot_mib"] = peak_rss_mib()
    out["repo_mb"] = du(root) / 1e6
    out["metadata_mb"] = _meta(repo, root) / 1e6
    opened = open_snapshot(repo, snap.snapshot)
    nbytes = 0
    t = time.perf_counter()
    for b in read_records(repo, opened, batch_size=5000):
        nbytes += b.nbytes
    out["read_pipeline_s"] = time.perf_counter() - t
    out["data_mb"] = nbytes / 1e6
    t = time.perf_counter()
    rep = restore_collection(repo, opened, store, "docs_restored")
    out["restore_s"] = time.perf_counter() - t
    out["restored"] = rep.records
    repo.close()
    store.close()
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def child(kind: str, size: int, work: Path) -> None:
    from drkit.cli.memory import bound_malloc_arenas

    bound_malloc_arenas()  # as the console script does, before any thread starts
    if kind == "gen-files":
        gen_files(work / "data", size)
    elif kind == "gen-vectors":
        gen_vectors(work, size)
    elif kind == "files":
        print(json.dumps(run_files(work)))
    else:
        print(json.dumps(run_vectors(work)))


def spawn(kind: str, size: int, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, str(size), str(work)]
    # stdout is the child's result; its stderr (warnings, a traceback) goes to ours
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out) if out.strip() else {}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gib", type=float, nargs="+", default=[1, 4, 16])
    ap.add_argument("--records", type=int, nargs="+", default=[200_000, 1_000_000, 2_000_000])
    ap.add_argument("--only", choices=["files", "vectors"])
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temp dir in /tmp")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return 0
    print(uptime())
    results: dict[str, list[dict[str, Any]]] = {"files": [], "vectors": []}
    plan = [("files", int(g * (1 << 30))) for g in args.gib if args.only in (None, "files")]
    plan += [("vectors", n) for n in args.records if args.only in (None, "vectors")]
    for kind, size in plan:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)  # a new directory is fine
        work = Path(tempfile.mkdtemp(prefix="drkit-scale-", dir=args.workdir))
        try:
            spawn(f"gen-{kind}", size, work)
            res = spawn(kind, size, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        res["size"] = size
        results[kind].append(res)
        print(f"{kind} {size} done ({uptime()})", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if results["files"]:
        print(
            f"{'files GiB':>10}{'backup MB/s':>13}{'restore MB/s':>14}{'check MB/s':>12}"
            f"{'peak RSS MiB':>14}{'metadata MB':>13}{'meta/data':>11}"
        )
        for r in results["files"]:
            mb = r["data_mb"]
            print(
                f"{r['size'] / 2**30:>10.3g}{mb / r['backup_s']:>13.0f}{mb / r['restore_s']:>14.0f}"
                f"{mb / r['check_s']:>12.0f}{r['peak_rss_mib']:>14.0f}{r['metadata_mb']:>13.2f}"
                f"{r['metadata_mb'] / mb:>11.5f}"
            )
    if results["vectors"]:
        print(
            f"{'records':>10}{'data MB':>9}{'snapshot s':>11}{'pipeline MB/s':>14}"
            f"{'read MB/s':>10}{'restore s':>10}{'peak RSS MiB':>14}{'metadata MB':>13}"
        )
        for r in results["vectors"]:
            mb = r["data_mb"]
            print(
                f"{r['size']:>10}{mb:>9.0f}{r['snapshot_s']:>11.1f}"
                f"{mb / r['snapshot_pipeline_s']:>14.0f}{mb / r['read_pipeline_s']:>10.0f}"
                f"{r['restore_s']:>10.1f}{r['peak_rss_mib']:>14.0f}{r['metadata_mb']:>13.3f}"
            )
    print(uptime())
    return 0


if __name__ == "__main__":
    sys.exit(main())
