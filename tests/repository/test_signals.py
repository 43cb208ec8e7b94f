"""A SIGTERM'd backup releases its lock, says what it left, and exits 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.repository.conftest import PASSWORD
from tests.repository.stores import open_test_store

from drkit.repository import KdfParams, Repository
from drkit.repository.maintenance import check

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_during_backup(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    Repository.init(open_test_store(repo_dir), PASSWORD, kdf=KdfParams.fast()).close()
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_text("small")
    with open(src / "big.sparse", "wb") as f:  # zeros: many seconds of chunking, no disk
        f.truncate(16 << 30)
    env = {**os.environ, "DRKIT_PASSWORD": PASSWORD, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "drkit", "backup", str(src), "--repo", str(repo_dir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any((repo_dir / "locks").glob("*")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (out, err)
    assert "terminated (SIGTERM): 0 snapshot(s)" in err
    assert "lock was released" in err
    assert "Traceback" not in err
    assert list((repo_dir / "locks").glob("*")) == []
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        assert check(r).ok
        assert r.snapshots() == []
