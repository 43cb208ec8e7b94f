"""Patched chunks (format 2, docs/repository-format.md section 3): a file edited in
place is stored as its changed runs plus slices of the parent's blobs; rules PC1-PC4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.repository.conftest import PASSWORD
from tests.repository.stores import open_test_store

from drkit.errors import CorruptObject, RepositoryError
from drkit.repository import KdfParams, Repository, backup_path, restore
from drkit.repository.files import load_tree, read_file
from drkit.repository.maintenance import check, forget, prune
from drkit.repository.patches import MAX_PARTS, max_parts
from drkit.repository.replica import copy
from drkit.repository.retention import Policy
from drkit.repository.trees import write_tree

SIZE = 8 << 20


def _repo(root: Path, version: int = 2) -> Repository:
    return Repository.init(open_test_store(root), PASSWORD, kdf=KdfParams.fast(), version=version)


def _matrix(path: Path, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).standard_normal(SIZE // 4).astype(np.float32).tobytes()
    path.write_bytes(data)
    return data


def _scatter(path: Path, seed: int, fraction: float = 0.01) -> int:
    """Rewrite ``fraction`` of the file as random 4 KiB blocks; returns the bytes edited."""
    rng = np.random.default_rng(seed)
    blocks = path.stat().st_size // 4096
    picked = rng.choice(blocks, size=max(1, int(blocks * fraction)), replace=False)
    with open(path, "r+b") as fh:
        for b in picked:
            fh.seek(int(b) * 4096)
            fh.write(rng.standard_normal(1024).astype(np.float32).tobytes())
    return len(picked) * 4096


def _content(repo: Repository, snap: Any, name: str = "m.f32") -> list[Any]:
    node = next(n for n in load_tree(repo, snap.tree) if n["name"] == name)
    content: list[Any] = node["content"]
    return content


def _restored(repo: Repository, snap: str, out: Path) -> bytes:
    restore(repo, snap, out)
    return (out / "m.f32").read_bytes()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    _matrix(d / "m.f32")
    return d


def test_a_scattered_edit_stores_about_the_edited_bytes_and_restores_bit_exact(
    tmp_path: Path, src: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    backup_path(repo, src, component="m")
    full_blobs = len(repo.index)
    edited = _scatter(src / "m.f32", seed=1)
    snap = backup_path(repo, src, component="m")
    # whole chunks would be ~77x: the changed runs plus metadata are a few times at most
    assert snap.summary["new_bytes_stored"] < 3 * edited
    patched = [e for e in _content(repo, snap) if isinstance(e, dict)]
    assert patched, "the edited chunks were stored whole"
    assert _restored(repo, snap.id, tmp_path / "out") == (src / "m.f32").read_bytes()
    assert read_file(repo, snap, "m.f32") == (src / "m.f32").read_bytes()
    assert check(repo, read_data=True).ok
    # a second edit on top of patched chunks, then one that only grows the file
    _scatter(src / "m.f32", seed=2)
    with open(src / "m.f32", "ab") as fh:
        fh.write(np.arange(300_000, dtype=np.float32).tobytes())
    snap2 = backup_path(repo, src, component="m")
    assert _restored(repo, snap2.id, tmp_path / "out2") == (src / "m.f32").read_bytes()
    assert len(repo.index) - full_blobs < 4 * len(patched) + 40
    repo.close()


def test_insertions_truncation_and_an_unchanged_rerun_restore_bit_exact(
    tmp_path: Path, src: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    backup_path(repo, src, component="m")
    data = (src / "m.f32").read_bytes()
    for i, new in enumerate([data[:100_000] + b"x" * 5000 + data[100_000:], data[: SIZE // 3]]):
        (src / "m.f32").write_bytes(new)
        snap = backup_path(repo, src, component="m")
        assert _restored(repo, snap.id, tmp_path / f"out{i}") == new
    again = backup_path(repo, src, component="m")  # unchanged: the entries are reused
    assert again.summary["new_blobs"] <= 1  # the tree at most
    repo.close()


def test_pc1_a_part_outside_its_blob_is_damage(tmp_path: Path, src: Path) -> None:
    repo = _repo(tmp_path / "repo")
    backup_path(repo, src, component="m")
    _scatter(src / "m.f32", seed=1)
    snap = backup_path(repo, src, component="m")
    nodes = load_tree(repo, snap.tree)
    entry = next(e for e in nodes[0]["content"] if isinstance(e, dict))
    bid, off, n = entry["parts"][0]
    entry["parts"][0] = [bid, off, n + (64 << 20)]  # far past the blob's end
    with repo.lock(exclusive=False):
        tree = write_tree(repo, nodes)
        repo.flush()
        bad = repo.save_snapshot({**snap.to_doc(), "tree": tree, "fingerprint": tree})
    with pytest.raises(CorruptObject, match="outside blob"):
        restore(repo, bad.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    report = check(repo)
    assert not report.ok
    assert any("outside blob" in e for e in report.errors)
    # a part inside its blob but with the wrong bytes: the chunk id no longer matches
    entry["parts"][0] = [bid, off, n - 1] if n > 1 else [bid, off + 1, n]
    with repo.lock(exclusive=False):
        tree = write_tree(repo, nodes)
        repo.flush()
        wrong = repo.save_snapshot({**snap.to_doc(), "tree": tree, "fingerprint": tree})
    with pytest.raises(CorruptObject, match="does not match its parts"):
        read_file(repo, wrong, "m.f32")
    repo.close()


def test_pc2_parts_name_blobs_and_fragmented_or_mostly_new_chunks_are_stored_whole(
    tmp_path: Path, src: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    backup_path(repo, src, component="m")
    most = 0
    for seed in range(1, 11):  # dense edits: each adds parts until the bound is reached
        _scatter(src / "m.f32", seed=seed, fraction=0.03)
        snap = backup_path(repo, src, component="m")
        for e in _content(repo, snap):
            if isinstance(e, dict):
                most = max(most, len(e["parts"]))
                assert len(e["parts"]) <= max_parts(sum(p[2] for p in e["parts"]))
                for bid, _, _ in e["parts"]:
                    assert repo.index.has(bytes.fromhex(bid)), "a part names a non-blob"
    assert most > MAX_PARTS // 2
    assert _restored(repo, snap.id, tmp_path / "out") == (src / "m.f32").read_bytes()
    # rewriting most of the file: whole chunks again, no patched ones
    _matrix(src / "m.f32", seed=99)
    snap = backup_path(repo, src, component="m")
    assert all(isinstance(e, str) for e in _content(repo, snap))
    repo.close()


def test_pc3_format_1_repositories_get_no_patched_chunks_and_copy_refuses_them(
    tmp_path: Path, src: Path
) -> None:
    old = _repo(tmp_path / "v1", version=1)
    assert Repository.open(open_test_store(tmp_path / "v1"), PASSWORD).version == 1
    backup_path(old, src, component="m")
    _scatter(src / "m.f32", seed=1)
    snap = backup_path(old, src, component="m")
    assert all(isinstance(e, str) for e in _content(old, snap))
    new = _repo(tmp_path / "v2")
    assert new.version == 2
    plain = backup_path(new, src, component="m")
    _scatter(src / "m.f32", seed=2)
    patched = backup_path(new, src, component="m")
    with pytest.raises(RepositoryError, match="format-1") as exc:
        copy(new, old, snapshot_ids=[patched.id])
    assert exc.value.hint
    res = copy(new, old, snapshot_ids=[plain.id])  # no patched chunk: copied
    assert res.snapshots_copied == [plain.id]
    assert check(old, read_data=True).ok
    with pytest.raises(RepositoryError, match="version 3 is not supported"):
        _repo(tmp_path / "v3", version=3)
    old.close()
    new.close()


def test_pc4_prune_keeps_the_parents_blobs_a_patched_snapshot_slices(
    tmp_path: Path, src: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    first = backup_path(repo, src, component="m")
    _scatter(src / "m.f32", seed=1)
    snap = backup_path(repo, src, component="m")
    forget(repo, Policy(keep_last=1), components=["m"])
    assert first.id not in repo.snapshot_ids()
    prune(repo)
    assert check(repo, read_data=True).ok
    assert _restored(repo, snap.id, tmp_path / "out") == (src / "m.f32").read_bytes()
    dst = _repo(tmp_path / "replica")
    assert copy(repo, dst).snapshots_copied == [snap.id]
    assert _restored(dst, snap.id, tmp_path / "out2") == (src / "m.f32").read_bytes()
    repo.close()
    dst.close()
