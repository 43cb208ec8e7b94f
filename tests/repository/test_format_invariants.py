"""The MUST rules of docs/repository-format.md, one test (or more) per rule id."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest
import zstandard
from tests.repository.conftest import PASSWORD
from tests.repository.stores import open_test_store

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore
from drkit.errors import RepositoryLocked, UnsafeRestorePath
from drkit.repository import KdfParams, Repository, backup_path, restore, snapshot_files
from drkit.repository.codec import BlobType
from drkit.repository.crypto import Cipher
from drkit.repository.files import write_tree
from drkit.repository.index import decode_index
from drkit.repository.maintenance import forget, prune
from drkit.repository.retention import Policy


class Recording(ObjectStore):
    """Wraps a store and records every put/delete in order."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.capabilities = inner.capabilities
        self.log: list[tuple[str, str]] = []

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        self.inner.put(key, data, if_absent=if_absent)
        self.log.append(("put", key))

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self.inner.get_range(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        self.log.append(("delete", key))


@pytest.fixture
def rec(tmp_path: Path) -> Recording:
    return Recording(open_test_store(tmp_path / "repo"))


def test_r2_names_are_hashes(repo: Repository, sample_tree: Path) -> None:
    snap = backup_path(repo, sample_tree, component="c")
    store = repo.store
    for prefix in ("data/", "index/", "keys/"):
        for info in store.list(prefix):
            assert blake3.blake3(store.get(info.key)).hexdigest() == info.key.rsplit("/", 1)[-1]
    for info in store.list("data/"):
        name = info.key.rsplit("/", 1)[-1]
        assert info.key == f"data/{name[:2]}/{name}"
    plain = zstandard.ZstdDecompressor().decompress(
        repo.cipher.decrypt(store.get(f"snapshots/{snap.id}"))
    )
    assert blake3.blake3(plain).hexdigest() == snap.id


def test_everything_but_keys_is_encrypted(repo: Repository, tmp_path: Path) -> None:
    marker = b"TOP-SECRET-MARKER-" * 100
    src = tmp_path / "secret"
    src.mkdir()
    (src / "very-secret-name.txt").write_bytes(marker)
    backup_path(repo, src, component="secret-component")
    for info in repo.store.list():
        data = repo.store.get(info.key)
        assert b"TOP-SECRET" not in data
        assert b"very-secret-name" not in data
        assert b"secret-component" not in data
        if info.key.startswith("keys/"):
            doc = json.loads(data)
            assert doc["kdf"] == "argon2id"
            assert PASSWORD.encode() not in data
        else:
            assert data[0] == 1  # the encrypted-object version byte


def test_k1_last_key_cannot_be_removed(repo: Repository) -> None:
    from drkit.errors import InputError

    with pytest.raises(InputError):
        repo.remove_key(repo.key_id)


def test_w1_w2_packs_then_index_then_snapshot(rec: Recording, sample_tree: Path) -> None:
    with Repository.init(rec, PASSWORD, kdf=KdfParams.fast()) as r:
        rec.log.clear()
        snap = backup_path(r, sample_tree, component="c")
        puts = [k for op, k in rec.log if op == "put" and not k.startswith("locks/")]
        # the manifest, then its ledger twin (section 6a), are the last writes
        assert puts[-2:] == [f"snapshots/{snap.id}", f"ledger/snapshots/{snap.id}"]
        seen_packs: set[str] = set()
        indexed: set[str] = set()
        for key in puts:
            if key.startswith("data/"):
                seen_packs.add(key.rsplit("/", 1)[-1])
            elif key.startswith("index/"):
                packs = decode_index(r.cipher.decrypt(rec.get(key)))
                assert set(packs) <= seen_packs, "W1: index lists a pack not yet stored"
                indexed |= set(packs)
        assert indexed == seen_packs, "W2: every pack is indexed before the snapshot"


def test_p2_prune_order(rec: Recording, sample_tree: Path) -> None:
    with Repository.init(rec, PASSWORD, kdf=KdfParams.fast()) as r:
        backup_path(r, sample_tree, component="c")
        (sample_tree / "emb.f32").write_bytes(os.urandom(2 << 20))
        backup_path(r, sample_tree, component="c")
        forget(r, Policy(keep_last=1))
        rec.log.clear()
        prune(r)
        log = [(op, k) for op, k in rec.log if not k.startswith("locks/")]
        first_delete = next(i for i, (op, _) in enumerate(log) if op == "delete")
        assert all(op == "put" for op, _ in log[:first_delete])
        assert any(k.startswith("index/") for _, k in log[:first_delete])
        deletes = [k for op, k in log if op == "delete"]
        idx_pos = [i for i, k in enumerate(deletes) if k.startswith("index/")]
        pack_pos = [i for i, k in enumerate(deletes) if k.startswith("data/")]
        assert idx_pos
        assert pack_pos
        assert max(idx_pos) < min(pack_pos), "P2: old index objects go before old packs"


def test_l1_exclusive_and_shared_locks(repo: Repository) -> None:
    with (
        repo.lock(exclusive=False),
        repo.lock(exclusive=False),
        pytest.raises(RepositoryLocked),
    ):
        repo.lock(exclusive=True)
    with repo.lock(exclusive=True), pytest.raises(RepositoryLocked):
        repo.lock(exclusive=False)
    assert list(repo.store.list("locks/")) == []  # L2: released (and the failed ones too)


def test_stale_locks_are_ignored(repo: Repository) -> None:
    stale = {"exclusive": True, "host": "elsewhere", "pid": 1, "time": 0.0, "expires": 1.0}
    repo.store.put("locks/" + "0" * 64, repo.cipher.encrypt(json.dumps(stale).encode()))
    dead = {
        "exclusive": True,
        "host": os.uname().nodename,
        "pid": 2**22 + 7,
        "time": time.time(),
        "expires": time.time() + 600,
    }
    repo.store.put("locks/" + "1" * 64, repo.cipher.encrypt(json.dumps(dead).encode()))
    with repo.lock(exclusive=True):
        pass
    assert repo.remove_stale_locks() == 2


def test_unsafe_names_are_refused(repo: Repository, tmp_path: Path) -> None:
    for bad in ("..", ".", "a/../../x", ""):
        blob = repo.write_blob(b"evil")
        tree = write_tree(
            repo,
            [
                {
                    "name": bad,
                    "type": "file",
                    "mode": 0o644,
                    "mtime_ns": 0,
                    "size": 4,
                    "content": [blob],
                }
            ],
        )
        snap = repo.save_snapshot(
            {
                "version": 1,
                "time": "2024-01-01T00:00:00.000000Z",
                "component": "x",
                "source": "",
                "kind": "files",
                "host": "h",
                "user": "u",
                "tree": tree,
                "fingerprint": tree,
                "tags": [],
                "parent": None,
                "summary": {},
                "meta": {},
            }
        )
        target = tmp_path / "restore" / "here"
        with pytest.raises(UnsafeRestorePath):
            restore(repo, snap, target)
        assert not target.exists()
        assert not (tmp_path / "restore" / "x").exists()
        assert not list((tmp_path / "restore").iterdir())


def test_incompressible_blobs_are_stored_raw(repo: Repository) -> None:
    data = os.urandom(1 << 20)
    bid = repo.write_blob(data)
    repo.flush()
    loc = repo.index.lookup(bytes.fromhex(bid))
    assert loc is not None
    assert loc.entry.length == len(data) + 1 + 41  # mode byte + nonce/version/tag
    text = b"all work and no play " * 50000
    tid = repo.write_blob(text)
    repo.flush()
    tloc = repo.index.lookup(bytes.fromhex(tid))
    assert tloc is not None
    assert tloc.entry.length < len(text) / 10


def test_blob_types_go_to_separate_packs(repo: Repository, sample_tree: Path) -> None:
    backup_path(repo, sample_tree, component="c")
    for entries in repo.index.packs().values():
        assert len({e.type for e in entries}) == 1
    assert any(e.type == BlobType.TREE for es in repo.index.packs().values() for e in es)


def test_snapshot_ids_are_equal_across_replicas(repo: Repository, tmp_path: Path) -> None:
    from drkit.repository.replica import copy

    snap = snapshot_files(repo, "state", {"journal.json": b"[]"})
    other = Repository.init(open_test_store(tmp_path / "other"), "x", kdf=KdfParams.fast())
    copy(repo, other)
    assert [s.id for s in other.snapshots()] == [snap.id]
    other.close()


def test_encryption_units_have_fresh_nonces(repo: Repository) -> None:
    c = Cipher(os.urandom(32))
    a, b = c.encrypt(b"same"), c.encrypt(b"same")
    assert a != b
    assert c.decrypt(a) == c.decrypt(b) == b"same"


def test_w3_a_writer_reloads_the_index_under_its_lock(
    store: ObjectStore, sample_tree: Path, tmp_path: Path
) -> None:
    """A prune between open and backup removes blobs the writer's old index listed."""
    with Repository.init(store, PASSWORD, kdf=KdfParams.fast()) as a:
        backup_path(a, sample_tree, component="c")
        with Repository.open(store, PASSWORD) as b:
            forget(b, Policy(keep_last=1), dry_run=False)
            for s in b.snapshots():
                b.forget_snapshot(s.id)
            prune(b)
        snap = backup_path(a, sample_tree, component="c", parent=None)
        assert snap.summary["new_blobs"] > 0
        restore(a, snap, tmp_path / "out")
    from drkit.repository.maintenance import check

    with Repository.open(store, PASSWORD) as c:
        assert check(c, read_data=True).ok
