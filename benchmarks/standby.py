"""Warm standby: sync throughput, steady-state lag under writes, promotion vs restore RTO.

Usage::

    .venv/bin/python benchmarks/standby.py                                  # 20k x 768
    .venv/bin/python benchmarks/standby.py --records 200000 --dim 768       # the full size
    .venv/bin/python benchmarks/standby.py --source lancedb --standby qdrant --records 5000

Measured: the first full sync (records/s), an incremental sync after 1 % random updates,
the lag after each pass while a writer upserts ``--write-rate`` records/s for
``--write-seconds``, and, side by side, the RTO of a promotion (checking the standby:
counts, checksums, golden queries) and of a restore of the same collection from a
repository snapshot into the standby's engine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    VectorStore,
    make_batch,
)
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.standby import Ledger, check_standby, sync_collection
from drkit.replication.vectors import restore_collection, snapshot_collection
from drkit.repository import KdfParams, Repository

URLS = {"lancedb": "lancedb://{d}/lance", "qdrant": "qdrant+local://{d}/qdrant"}


def _open(engine: str, root: Path, tag: str) -> VectorStore:
    return open_vector_store(URLS[engine].format(d=root / tag))


def _write(store: VectorStore, cfg: CollectionConfig, lo: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for start in range(lo, lo + n, 5000):
        k = min(5000, lo + n - start)
        vecs = rng.standard_normal((k, cfg.vectors[0].dimension)).astype(np.float32)
        ids = [str(i) for i in range(start, start + k)]
        store.import_batches(
            "docs", [make_batch(cfg, ids, {"": vecs}, [{"i": i} for i in range(start, start + k)])]
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--source", default="lancedb", choices=sorted(URLS))
    ap.add_argument("--standby", default="lancedb", choices=sorted(URLS))
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--write-rate", type=float, default=100.0)
    ap.add_argument("--write-seconds", type=float, default=10.0)
    args = ap.parse_args()
    out: dict[str, Any] = {"records": args.records, "dim": args.dim}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = CollectionConfig("docs", (VectorField("", args.dim, Metric.L2),))
        source, standby = _open(args.source, root, "src"), _open(args.standby, root, "sb")
        source.create(cfg)
        _write(source, cfg, 0, args.records, 1)
        with Ledger(root / "ledger.sqlite") as ledger:
            t = time.perf_counter()
            sync_collection(source, standby, "docs", ledger, batch_size=args.batch_size)
            full = time.perf_counter() - t
            out["full_sync_s"] = round(full, 3)
            out["full_sync_records_per_s"] = round(args.records / full)
            upd = max(1, args.records // 100)
            rng = np.random.default_rng(2)
            picked = sorted(rng.choice(args.records, upd, replace=False).tolist())
            for lo in picked:
                _write(source, cfg, lo, 1, lo)
            t = time.perf_counter()
            rep = sync_collection(source, standby, "docs", ledger, batch_size=args.batch_size)
            out["incremental_1pct_s"] = round(time.perf_counter() - t, 3)
            out["incremental_upserted"] = rep.upserted
            stop = threading.Event()

            def writer() -> None:
                n, every = 0, 1.0 / args.write_rate
                while not stop.is_set():
                    _write(source, cfg, n % args.records, 1, n)
                    n += 1
                    time.sleep(every)

            th = threading.Thread(target=writer)
            th.start()
            lags = []
            end = time.monotonic() + args.write_seconds
            while time.monotonic() < end:
                r = sync_collection(source, standby, "docs", ledger, batch_size=args.batch_size)
                if r.lag_s is not None:
                    lags.append(r.lag_s)
            stop.set()
            th.join()
            sync_collection(source, standby, "docs", ledger, batch_size=args.batch_size)
            out["lag_under_writes_s"] = {
                "write_rate": args.write_rate,
                "passes": len(lags),
                "median": round(statistics.median(lags), 3) if lags else None,
                "max": round(max(lags), 3) if lags else None,
            }
            t = time.perf_counter()
            check = check_standby("bench", standby, "docs", ledger)
            out["promotion_rto_s"] = round(time.perf_counter() - t, 3)
            out["promotion_check_ok"] = check.ok
        repo = Repository.init(LocalStore(root / "repo", fsync=False), "pw", kdf=KdfParams.fast())
        snapshot = snapshot_collection(repo, source, "docs", component="bench")
        t = time.perf_counter()
        restore_collection(repo, snapshot.snapshot, standby, "docs_restored")
        out["restore_rto_s"] = round(time.perf_counter() - t, 3)
        source.close()
        standby.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
