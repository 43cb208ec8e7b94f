"""More MUST rules of docs/repository-format.md, one test per rule id, through the
repository's public API (``drkit.repository``, ``maintenance``, ``replica``).

``test_format_invariants.py`` has the others; ``tests/test_docs.py`` checks that every
rule id of the format page is named by some test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.repository.conftest import PASSWORD
from tests.repository.stores import open_test_store
from tests.repository.test_format_invariants import Recording

from drkit.errors import CorruptObject, RepositoryLocked, RepositoryNotFound, WrongPassword
from drkit.repository import KdfParams, Repository, backup_path, restore, snapshot_files
from drkit.repository.maintenance import check, forget, prune
from drkit.repository.replica import copy
from drkit.repository.retention import Policy


@pytest.fixture
def rec(tmp_path: Path) -> Recording:
    return Recording(open_test_store(tmp_path / "repo"))


def _repo(store: Recording) -> Repository:
    return Repository.init(store, PASSWORD, kdf=KdfParams.fast())


def _puts(rec: Recording, prefix: str = "") -> list[str]:
    return [k for op, k in rec.log if op == "put" and k.startswith(prefix)]


def test_r1_objects_are_written_once(rec: Recording, sample_tree: Path) -> None:
    repo = _repo(rec)
    backup_path(repo, sample_tree, component="c")
    (sample_tree / "new.txt").write_text("a change\n")
    backup_path(repo, sample_tree, component="c")
    snapshot_files(repo, "d", {"a": b"x" * 100})
    repo.close()
    written = [k for k in _puts(rec) if not k.startswith("locks/")]
    assert written
    assert len(written) == len(set(written)), "an object was written twice"
    deleted = [k for op, k in rec.log if op == "delete"]
    assert all(k.startswith("locks/") for k in deleted), deleted  # backups delete only locks


def test_k2_no_key_opens_or_no_repository(tmp_path: Path) -> None:
    store = open_test_store(tmp_path / "repo")
    with pytest.raises(RepositoryNotFound):
        Repository.open(store, PASSWORD)
    Repository.init(store, PASSWORD, kdf=KdfParams.fast()).close()
    with pytest.raises(WrongPassword):
        Repository.open(store, "not the password")
    Repository.open(store, PASSWORD).close()


def test_b1_a_damaged_blob_is_reported_with_its_pack(rec: Recording, tmp_path: Path) -> None:
    repo = _repo(rec)
    snap = snapshot_files(repo, "c", {"file": bytes(range(256)) * 64})
    pack = max(_puts(rec, "data/"), key=lambda k: rec.stat(k).size)  # the file's data pack
    data = bytearray(rec.get(pack))
    data[40] ^= 0xFF  # inside the first (only) blob, before the pack header
    rec.inner.delete(pack)
    rec.inner.put(pack, bytes(data))
    repo.close()
    repo = Repository.open(rec, PASSWORD)
    with pytest.raises(CorruptObject) as info:
        restore(repo, snap, tmp_path / "out")
    assert pack.rsplit("/", 1)[-1][:16] in str(info.value)
    repo.close()


def test_l2_locks_are_removed_also_on_error(rec: Recording) -> None:
    repo = _repo(rec)

    def fail_under_lock() -> None:
        with repo.lock(exclusive=True):
            assert list(rec.list("locks/"))
            raise RuntimeError("the operation failed")

    with pytest.raises(RuntimeError):
        fail_under_lock()
    assert list(rec.list("locks/")) == []
    snapshot_files(repo, "c", {"a": b"payload"})
    forget(repo, Policy(keep_last=1))

    def crash() -> None:
        raise RuntimeError("prune dies after repacking")

    with pytest.raises(RuntimeError):
        prune(repo, after_repack=crash)  # fails while holding its exclusive lock
    assert list(rec.list("locks/")) == []
    repo.close()


def test_rd1_readers_verify_the_snapshot_manifest(rec: Recording) -> None:
    repo = _repo(rec)
    snap = snapshot_files(repo, "c", {"a": b"payload"})
    key = f"snapshots/{snap.id}"
    data = bytearray(rec.get(key))
    data[-1] ^= 0x01
    rec.inner.delete(key)
    rec.inner.put(key, bytes(data))
    repo.close()
    repo = Repository.open(rec, PASSWORD)
    with pytest.raises(CorruptObject):
        repo.load_snapshot(snap.id)
    repo.close()


def test_rd2_an_unindexed_pack_is_not_part_of_the_repository(rec: Recording) -> None:
    repo = _repo(rec)
    before = set(_puts(rec, "index/"))
    blob = repo.write_blob(b"only in an unindexed pack" * 10)
    repo.flush()
    (new_index,) = set(_puts(rec, "index/")) - before
    rec.inner.delete(new_index)  # as if the writer died between pack and index (W1)
    repo.close()
    repo = Repository.open(rec, PASSWORD)
    assert not repo.blob_exists(blob)
    with pytest.raises(CorruptObject, match="not in the index"):
        repo.read_blob(blob)
    report = check(repo)
    assert report.ok  # an unreferenced pack is a warning, not part of the repository
    assert report.warnings
    repo.close()


def test_p1_prune_needs_an_exclusive_lock(rec: Recording) -> None:
    repo = _repo(rec)
    snapshot_files(repo, "c", {"a": b"payload"})
    with repo.lock(exclusive=False), pytest.raises(RepositoryLocked):
        prune(repo)
    repo.close()


def test_p3_forget_deletes_only_snapshots_and_keeps_the_newest_verified(rec: Recording) -> None:
    repo = _repo(rec)
    snaps = [snapshot_files(repo, "c", {"a": f"version {i}".encode()}) for i in range(4)]
    repo.mark_verified(snaps[1].id, {"by": "test"})
    repo.mark_verified(snaps[0].id, {"by": "test"})
    start = len(rec.log)
    result = forget(repo, Policy(keep_last=1))
    deleted = [k for op, k in rec.log[start:] if op == "delete" and not k.startswith("locks/")]
    assert deleted
    assert all(k.startswith(("snapshots/", "verifications/")) for k in deleted)
    kept = {s.id for s in repo.snapshots("c")}
    assert kept == {snaps[3].id, snaps[1].id}  # the newest, and the newest verified one
    assert sorted(result.removed) == sorted([snaps[0].id, snaps[2].id])
    repo.close()


def test_c1_copy_writes_blobs_then_index_then_snapshot(tmp_path: Path, sample_tree: Path) -> None:
    src = Repository.init(open_test_store(tmp_path / "a"), PASSWORD, kdf=KdfParams.fast())
    backup_path(src, sample_tree, component="c")
    dst_store = Recording(open_test_store(tmp_path / "b"))
    dst = _repo(dst_store)
    start = len(dst_store.log)
    result = copy(src, dst)
    order = [k.split("/")[0] for op, k in dst_store.log[start:] if op == "put"]
    order = [kind for kind in order if kind in ("data", "index", "snapshots")]
    assert order == sorted(order, key=["data", "index", "snapshots"].index)
    assert {"data", "index", "snapshots"} <= set(order)
    assert result.packs_verified > 0  # read back what it wrote before reporting success
    src.close()
    dst.close()


def test_lg1_the_ledger_holds_each_record_twice_object_first(rec: Recording) -> None:
    repo = _repo(rec)
    snap = snapshot_files(repo, "c", {"a": b"payload"})
    vid = repo.mark_verified(snap.id, {"by": "test"})
    repo.close()
    puts = _puts(rec)
    for kind, rid in (("snapshots", snap.id), ("verifications", vid)):
        assert rec.get(f"ledger/{kind}/{rid}") == rec.get(f"{kind}/{rid}")
        assert puts.index(f"{kind}/{rid}") < puts.index(f"ledger/{kind}/{rid}")
