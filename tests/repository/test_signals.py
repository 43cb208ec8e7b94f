"""A SIGTERM'd backup releases its lock, says what it left, and exits 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
    assert "terminated (SIGTERM) during backup: the lock was released; 0 snapshot(s)" in err
    assert "lock was released" in err
    assert "Traceback" not in err
    assert list((repo_dir / "locks").glob("*")) == []
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        assert check(r).ok
        assert r.snapshots() == []


def test_sigterm_exits_releases_the_lock_for_every_repository_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """copy, repair and forget use the same guard as backup: the real signal unwinds the
    held lock and exits 143 with one line."""
    import typer

    from drkit.cli.repo_access import sigterm_exits

    repo_dir = tmp_path / "repo"

    def terminated_while_locked(r: Repository) -> None:
        with sigterm_exits("copy", lambda: "run it again"), r.lock(exclusive=True):
            assert list((repo_dir / "locks").glob("*"))
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends

    with Repository.init(open_test_store(repo_dir), PASSWORD, kdf=KdfParams.fast()) as r:
        with pytest.raises(typer.Exit) as exc:
            terminated_while_locked(r)
        assert exc.value.exit_code == 143
        assert list((repo_dir / "locks").glob("*")) == []
    err = capsys.readouterr().err
    assert "terminated (SIGTERM) during copy: the lock was released; run it again" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
