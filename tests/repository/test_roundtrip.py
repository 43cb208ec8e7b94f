"""Backup and restore round trips: bit-exact, atomic, safe; dedup; keys and passwords."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tests.repository.conftest import PASSWORD, make_tree, tree_state

from drkit.connectors.objectstore.base import ObjectStore
from drkit.errors import InputError, RepositoryExists, RepositoryNotFound, WrongPassword
from drkit.repository import (
    KdfParams,
    Repository,
    backup_path,
    read_file,
    restore,
    snapshot_files,
)


def test_backup_restore_is_bit_exact(repo: Repository, sample_tree: Path, tmp_path: Path) -> None:
    snap = backup_path(repo, sample_tree, component="datasets", tags=("nightly",))
    assert snap.component == "datasets"
    assert snap.tags == ("nightly",)
    assert snap.summary["files"] == 23
    out = tmp_path / "out"
    res = restore(repo, snap.id[:10], out)
    assert tree_state(out) == tree_state(sample_tree)
    assert res.files == 23
    assert os.readlink(out / "link") == "sub/note-1.txt"
    assert (out / "link").is_symlink()
    assert os.readlink(out / "dangling") == "../nowhere"
    assert not [p for p in tmp_path.iterdir() if "drkit-restore" in p.name]


def test_reopen_and_restore_from_fresh_process_state(
    store: ObjectStore, sample_tree: Path, tmp_path: Path
) -> None:
    with Repository.init(store, PASSWORD, kdf=KdfParams.fast()) as r:
        snap = backup_path(r, sample_tree, component="c")
    with Repository.open(store, PASSWORD) as r2:
        assert [s.id for s in r2.snapshots()] == [snap.id]
        restore(r2, "latest", tmp_path / "out")
    assert tree_state(tmp_path / "out") == tree_state(sample_tree)


def test_second_backup_stores_almost_nothing(repo: Repository, sample_tree: Path) -> None:
    first = backup_path(repo, sample_tree, component="c")
    second = backup_path(repo, sample_tree, component="c")
    assert second.parent == first.id
    assert second.summary["new_bytes_stored"] == 0
    assert second.tree == first.tree
    third = backup_path(repo, sample_tree, component="c", parent=None)  # no parent: re-read all
    assert third.summary["new_bytes_stored"] == 0


def test_in_place_edit_stores_only_changed_chunks(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    size = 48 << 20
    data = np.random.default_rng(7).standard_normal(size // 4).astype(np.float32)
    (src / "emb.f32").write_bytes(data.tobytes())
    first = backup_path(repo, src, component="emb")
    stored_first = first.summary["new_bytes_stored"]
    edited = size // 100
    start = size // 2
    with open(src / "emb.f32", "r+b") as fh:
        fh.seek(start)
        fh.write(np.random.default_rng(8).standard_normal(edited // 4).astype(np.float32).tobytes())
    second = backup_path(repo, src, component="emb")
    new = second.summary["new_bytes_stored"]
    assert 0 < new <= 2 * edited + (1 << 20), (new, edited)
    assert new < stored_first / 10
    restored = read_file(repo, second, "emb.f32")
    assert restored == (src / "emb.f32").read_bytes()


def test_wrong_password_and_missing_repo(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound):
        Repository.open(store, PASSWORD)
    Repository.init(store, PASSWORD, kdf=KdfParams.fast()).close()
    with pytest.raises(WrongPassword) as err:
        Repository.open(store, "not the password")
    assert "not the password" not in str(err.value)
    with pytest.raises(RepositoryExists):
        Repository.init(store, PASSWORD, kdf=KdfParams.fast())


def test_keys_add_remove(store: ObjectStore) -> None:
    with Repository.init(store, PASSWORD, kdf=KdfParams.fast()) as r:
        snap = snapshot_files(r, "state", {"a.json": b"{}"})
        new_id = r.add_key("second password", kdf=KdfParams.fast())
        assert len(r.list_keys()) == 2
    with Repository.open(store, "second password") as r2:
        assert r2.key_id == new_id
        assert read_file(r2, snap.id, "a.json") == b"{}"
        r2.remove_key(
            r2.list_keys()[0].id if r2.list_keys()[0].id != new_id else r2.list_keys()[1].id
        )
        with pytest.raises(InputError):
            r2.remove_key(new_id)  # the last key
    with pytest.raises(WrongPassword):
        Repository.open(store, PASSWORD)


def test_snapshot_files_and_blobs(repo: Repository) -> None:
    big = os.urandom(3 << 20)
    snap = snapshot_files(
        repo,
        "vectors",
        {"col/part-0.parquet": big, "col/config.json": b'{"dim": 4}', "x": b""},
        kind="vectors",
        meta={"engine": "qdrant"},
    )
    assert read_file(repo, snap, "col/part-0.parquet") == big
    assert read_file(repo, snap, "x") == b""
    assert repo.find_snapshot(snap.id[:6]).meta == {"engine": "qdrant"}
    bid = repo.write_blob(b"hello")
    repo.flush()
    assert repo.read_blob(bid) == b"hello"


def test_restore_refuses_non_empty_target(
    repo: Repository, sample_tree: Path, tmp_path: Path
) -> None:
    snap = backup_path(repo, sample_tree, component="c")
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep").write_text("mine")
    with pytest.raises(InputError):
        restore(repo, snap, target)
    assert (target / "keep").read_text() == "mine"


def test_backup_of_single_file(repo: Repository, tmp_path: Path) -> None:
    f = make_tree(tmp_path / "t") / "emb.f32"
    snap = backup_path(repo, f, component="one")
    restore(repo, snap, tmp_path / "out")
    assert (tmp_path / "out" / "emb.f32").read_bytes() == f.read_bytes()


def test_segmented_reading_chunks_like_whole_buffer(repo: Repository, tmp_path: Path) -> None:
    """Files are read in 32 MiB segments; boundaries must equal whole-buffer chunking."""
    data = np.random.default_rng(3).standard_normal(70 << 18).astype(np.float32).tobytes()
    src = tmp_path / "seg"
    src.mkdir()
    (src / "big.f32").write_bytes(data)
    backup_path(repo, src, component="a")
    again = snapshot_files(repo, "b", {"big.f32": data})
    assert again.summary["new_blobs"] <= 1  # only its tree is new
