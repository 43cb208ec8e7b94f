"""Damage is detected (check --read-data, restore) with the object named; repair heals it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tests.repository.conftest import PASSWORD, tree_state
from tests.repository.stores import open_test_store

from drkit.connectors.objectstore.base import ObjectStore
from drkit.errors import CorruptObject
from drkit.repository import KdfParams, Repository, backup_path, restore
from drkit.repository.maintenance import check
from drkit.repository.replica import copy, repair


def _packs(store: ObjectStore) -> list[str]:
    return sorted(i.key for i in store.list("data/"))


def _damage(store: ObjectStore, key: str, how: str, rng: random.Random) -> None:
    data = bytearray(store.get(key))
    if how == "flip":
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
    else:
        data = data[: rng.randrange(len(data))]
    store.put(key, bytes(data))


def test_clean_repository_checks_ok(repo: Repository, sample_tree: Path) -> None:
    backup_path(repo, sample_tree, component="c")
    report = check(repo, read_data=True)
    assert report.ok, report.errors
    assert report.packs_read == report.packs >= 2
    assert check(repo, subset=(1, 2)).packs_read + check(repo, subset=(2, 2)).packs_read == (
        report.packs
    )


@pytest.mark.parametrize("seed", range(8))
def test_byte_flips_and_truncations_are_detected(
    repo: Repository, store: ObjectStore, sample_tree: Path, tmp_path: Path, seed: int
) -> None:
    snap = backup_path(repo, sample_tree, component="c")
    rng = random.Random(seed)
    victim = rng.choice(_packs(store))
    _damage(store, victim, "flip" if seed % 2 else "truncate", rng)
    report = check(repo, read_data=True)
    assert not report.ok
    assert victim in report.damaged_objects
    # restore either refuses with the object named and leaves nothing, or (when only the
    # pack header/trailer was hit, which restore does not need) is bit-exact
    reopened = Repository.open(store, PASSWORD)
    failure: CorruptObject | None = None
    try:
        restore(reopened, snap.id, tmp_path / "out")
    except CorruptObject as err:
        failure = err
    if failure is not None:
        assert victim in str(failure) or victim in (failure.object_id or "")
        assert not (tmp_path / "out").exists()
    else:
        assert tree_state(tmp_path / "out") == tree_state(sample_tree)
    assert not [p for p in tmp_path.iterdir() if "drkit-restore" in p.name]
    reopened.close()


def test_damaged_index_and_snapshot_are_detected(
    repo: Repository, store: ObjectStore, sample_tree: Path
) -> None:
    backup_path(repo, sample_tree, component="c")
    idx = next(iter(store.list("index/"))).key
    snap = next(iter(store.list("snapshots/"))).key
    _damage(store, idx, "flip", random.Random(1))
    _damage(store, snap, "flip", random.Random(2))
    report = check(repo)
    assert {idx, snap} <= report.damaged_objects


def test_copy_is_incremental_and_repair_heals(
    repo: Repository, store: ObjectStore, sample_tree: Path, tmp_path: Path
) -> None:
    first = backup_path(repo, sample_tree, component="c")
    repo.mark_verified(first.id, {"restored_files": 23})
    replica_store = open_test_store(tmp_path / "replica")
    with Repository.init(replica_store, "replica password", kdf=KdfParams.fast()) as replica:
        res = copy(repo, replica)
        assert res.snapshots_copied == [first.id]
        assert res.verifications_copied == 1
        assert res.blobs_copied > 0
        again = copy(repo, replica)
        assert again.snapshots_copied == []
        assert again.blobs_copied == 0
        (sample_tree / "new.txt").write_text("one more file\n")
        second = backup_path(repo, sample_tree, component="c")
        inc = copy(repo, replica)
        assert inc.snapshots_copied == [second.id]
        assert inc.blobs_copied <= 3  # the new file, its directory tree
        assert check(replica, read_data=True).ok
        restore(replica, second.id, tmp_path / "from-replica")
        assert tree_state(tmp_path / "from-replica") == tree_state(sample_tree)

        # damage the primary: flip a pack, delete another, damage the index
        packs = _packs(store)
        _damage(store, packs[0], "flip", random.Random(3))
        store.delete(packs[-1])
        _damage(store, next(iter(store.list("index/"))).key, "truncate", random.Random(4))
        assert not check(repo, read_data=True).ok
        healed = repair(repo, replica)
        assert healed.ok, healed.unrecoverable
        assert healed.blobs_refetched > 0
    report = check(repo, read_data=True)
    assert report.ok, report.errors
    restore(repo, second.id, tmp_path / "healed")
    assert tree_state(tmp_path / "healed") == tree_state(sample_tree)
