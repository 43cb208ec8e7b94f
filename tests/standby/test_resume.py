"""kill -9 during a sync, then resume; sync under concurrent writes to the source."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from tests.connectors.vectorstore.data import as_dict, config, records

from drkit.connectors.vectorstore.base import Metric
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.standby import Ledger, check_standby, sync_collection


def _spooled(path: Path) -> int:
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM spool").fetchone()[0])
    except sqlite3.OperationalError:
        return -1


def test_kill_9_mid_sync_then_resume(tmp_path: Path) -> None:
    lance = f"lancedb://{tmp_path / 'lance'}"
    with open_vector_store(lance) as store:
        cfg = config("docs", dim=8, metric=Metric.L2)
        store.create(cfg)
        store.import_batches("docs", [records(cfg, 1000, flat=True, seed=1)])
    plan = tmp_path / "drkit.yaml"
    standby_url = f"lancedb://{tmp_path / 'standby'}"
    plan.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "kill",
                "tiers": {"t": {"rto": "5m", "rpo": "15m"}},
                "repositories": {
                    "primary": {"name": "p", "url": (tmp_path / "r").as_uri(), "region": "a"}
                },
                "vector_stores": [
                    {
                        "name": "kb",
                        "tier": "t",
                        "engine": lance,
                        "standby": {"engine": standby_url, "region": "b", "batch_size": 10},
                    }
                ],
            }
        )
    )
    env = {**os.environ, "DRKIT_STATE": str(tmp_path / "state.db")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    ledger = tmp_path / "standby" / "kb.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drkit", "standby", "sync", "kb", "--plan", str(plan)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # wait until the pass is applying: the spool is filled (100 chunks) and draining
        while not (0 < _spooled(ledger) < 90):
            assert proc.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _spooled(ledger)
    assert left > 0
    with open_vector_store(standby_url) as standby:
        assert standby.count("docs") < 1000
    done = subprocess.run(
        [sys.executable, "-m", "drkit", "standby", "sync", "kb", "--plan", str(plan), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"resumed_chunks": ' + str(left) in done.stdout
    with open_vector_store(standby_url) as standby, open_vector_store(lance) as source:
        assert standby.count("docs") == 1000  # no duplicates
        assert as_dict(standby.export("docs")) == as_dict(source.export("docs"))  # no misses


def test_sync_under_concurrent_writes_then_equal(tmp_path: Path) -> None:
    source = open_vector_store(f"lancedb://{tmp_path / 'src'}")
    standby = open_vector_store(f"qdrant+local://{tmp_path / 'q'}")
    cfg = config("docs", dim=8, metric=Metric.L2)
    source.create(cfg)
    source.import_batches("docs", [records(cfg, 200, flat=True, seed=2)])
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            source.import_batches("docs", [records(cfg, 5, flat=True, seed=n, start=200 + n)])
            source.delete_ids("docs", [str(n * 4)])  # "0", "4", ...: ids of kind decimal
            n += 5
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        t.start()
        try:
            for _ in range(4):
                rep = sync_collection(source, standby, "docs", ledger, batch_size=50)
                # every change older than the pass's export is on the standby
                assert rep.lag_s is not None
                assert rep.lag_s <= rep.duration_s + 0.01
        finally:
            stop.set()
            t.join()
        sync_collection(source, standby, "docs", ledger, batch_size=50)
        assert as_dict(standby.export("docs")) == as_dict(source.export("docs"))
        assert check_standby("kb", standby, "docs", ledger, source=source).behind == 0
    source.close()
    standby.close()
