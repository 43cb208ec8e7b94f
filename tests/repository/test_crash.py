"""SIGKILL at random points of backup, forget/prune and copy; afterwards ``check`` passes
and every snapshot that completed restores bit-exact.

A few seeded trials per operation by default; the full campaign runs with
``DRKIT_FULL_CAMPAIGN=1``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.repository.conftest import tree_state
from tests.repository.crash_child import PASSWORD
from tests.repository.stores import open_test_store

from drkit.repository import KdfParams, Repository, backup_path, restore
from drkit.repository.maintenance import check, prune
from drkit.repository.replica import copy

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("DRKIT_FULL_CAMPAIGN") == "1"
TRIALS = 40 if FULL else 2


def _version(root: Path, i: int) -> Path:
    """Version i of a source tree: shared files, changed files, one big array."""
    d = root / f"v{i}"
    rng = np.random.default_rng(i)
    (d / "docs").mkdir(parents=True)
    for k in range(30):
        (d / "docs" / f"{k}.txt").write_text(f"doc {k} " * (50 + (k * i) % 40))
    (d / "emb.f32").write_bytes(rng.standard_normal(3 << 18).astype(np.float32).tobytes())
    (d / "same.bin").write_bytes(np.random.default_rng(99).bytes(2 << 20))
    return d


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.repository.crash_child", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at_random(proc: subprocess.Popen[str], rng: random.Random, window: float) -> bool:
    """Wait for 'ready', then SIGKILL after a random delay; True when it was killed."""
    with proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read())
        try:
            proc.wait(timeout=rng.uniform(0, window))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        assert proc.returncode == 0, proc.stderr.read()
        return False


def _assert_sound(repo_dir: Path, sources: dict[str, Path], tmp: Path) -> int:
    """check passes and every snapshot restores bit-exact; returns the snapshot count."""
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        report = check(r, read_data=True)
        assert report.ok, report.errors
        snaps = r.snapshots()
        for s in snaps:
            out = tmp / f"restore-{s.short_id}-{random.random()}"
            restore(r, s, out)
            assert tree_state(out) == tree_state(sources[s.tags[0]])
        return len(snaps)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    return {f"v{i}": _version(root, i) for i in range(4)}


def _init(repo_dir: Path) -> None:
    Repository.init(open_test_store(repo_dir), PASSWORD, kdf=KdfParams.fast()).close()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_backup(versions: dict[str, Path], tmp_path: Path, trial: int) -> None:
    rng = random.Random(1000 + trial)
    repo_dir = tmp_path / "repo"
    _init(repo_dir)
    proc = _child("backup", str(repo_dir), *(str(p) for p in versions.values()))
    _kill_at_random(proc, rng, 1.5)
    _assert_sound(repo_dir, versions, tmp_path)
    # the repository stays usable: a new backup (the dead lock is stale) and a prune
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        backup_path(r, versions["v3"], component="c", tags=("v3",))
        prune(r)
    assert _assert_sound(repo_dir, versions, tmp_path) >= 1


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_forget_and_prune(
    versions: dict[str, Path], tmp_path: Path, trial: int
) -> None:
    rng = random.Random(2000 + trial)
    repo_dir = tmp_path / "repo"
    _init(repo_dir)
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        for name, src in versions.items():
            backup_path(r, src, component="c", tags=(name,))
    proc = _child("prune", str(repo_dir))
    _kill_at_random(proc, rng, 1.0)
    n = _assert_sound(repo_dir, versions, tmp_path)
    assert n >= 2
    with Repository.open(open_test_store(repo_dir), PASSWORD) as r:
        prune(r)  # finishing the interrupted prune works
    _assert_sound(repo_dir, versions, tmp_path)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_copy(versions: dict[str, Path], tmp_path: Path, trial: int) -> None:
    rng = random.Random(3000 + trial)
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    _init(src_dir)
    _init(dst_dir)
    with Repository.open(open_test_store(src_dir), PASSWORD) as r:
        for name, src in versions.items():
            backup_path(r, src, component="c", tags=(name,))
    proc = _child("copy", str(src_dir), str(dst_dir))
    _kill_at_random(proc, rng, 1.5)
    _assert_sound(dst_dir, versions, tmp_path)
    with (
        Repository.open(open_test_store(src_dir), PASSWORD) as s,
        Repository.open(open_test_store(dst_dir), PASSWORD) as d,
    ):
        copy(s, d)
    assert _assert_sound(dst_dir, versions, tmp_path) == len(versions)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_init(tmp_path: Path, trial: int) -> None:
    rng = random.Random(4000 + trial)
    repo_dir = tmp_path / "repo"
    _kill_at_random(_child("init", str(repo_dir)), rng, 0.6)
    # running the same init again finishes (or finds) the repository: restartable (I1)
    _kill_at_random(_child("init", str(repo_dir)), rng, 60)
    _assert_sound(repo_dir, {}, tmp_path)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_copy_init(versions: dict[str, Path], tmp_path: Path, trial: int) -> None:
    rng = random.Random(5000 + trial)
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    _init(src_dir)
    with Repository.open(open_test_store(src_dir), PASSWORD) as r:
        for name, src in versions.items():
            backup_path(r, src, component="c", tags=(name,))
    _kill_at_random(_child("copy-init", str(src_dir), str(dst_dir)), rng, 2.0)
    _kill_at_random(_child("copy-init", str(src_dir), str(dst_dir)), rng, 120)
    assert _assert_sound(dst_dir, versions, tmp_path) == len(versions)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_repair(versions: dict[str, Path], tmp_path: Path, trial: int) -> None:
    rng = random.Random(6000 + trial)
    repo_dir, replica_dir = tmp_path / "repo", tmp_path / "replica"
    _init(repo_dir)
    _init(replica_dir)
    with (
        Repository.open(open_test_store(repo_dir), PASSWORD) as r,
        Repository.open(open_test_store(replica_dir), PASSWORD) as replica,
    ):
        for name, src in versions.items():
            backup_path(r, src, component="c", tags=(name,))
        copy(r, replica)
    packs = sorted(p for p in (repo_dir / "data").rglob("*") if p.is_file())
    damaged = rng.choice(packs)
    damaged.write_bytes(damaged.read_bytes()[:-100])
    snapshot = next((repo_dir / "snapshots").iterdir())
    snapshot.unlink()
    _kill_at_random(_child("repair", str(repo_dir), str(replica_dir)), rng, 1.5)
    # whatever the kill left, repair again heals everything
    _kill_at_random(_child("repair", str(repo_dir), str(replica_dir)), rng, 120)
    assert _assert_sound(repo_dir, versions, tmp_path) == len(versions)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_key_add_and_remove(tmp_path: Path, trial: int) -> None:
    rng = random.Random(7000 + trial)
    repo_dir = tmp_path / "repo"
    _init(repo_dir)
    _kill_at_random(_child("keys", str(repo_dir)), rng, 0.5)
    n = _assert_sound(repo_dir, {}, tmp_path)  # opens with the first password, check passes
    assert n == 0
