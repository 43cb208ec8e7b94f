"""Fixtures for repository tests: stores, repositories, generated trees."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.repository.stores import open_test_store

from drkit.connectors.objectstore.base import ObjectStore
from drkit.repository import KdfParams, Repository

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_test_store(tmp_path / "repo")


@pytest.fixture
def repo(store: ObjectStore) -> Iterator[Repository]:
    r = Repository.init(store, PASSWORD, kdf=KdfParams.fast())
    yield r
    r.close()


def make_tree(root: Path, seed: int = 0, big: int = 3 << 20) -> Path:
    """A small tree: text files, an empty file, a float32 array, a symlink, a subdir."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    for i in range(20):
        (root / "sub" / f"note-{i}.txt").write_text(f"note {i} seed {seed}\n" * (i + 1))
    (root / "empty").write_bytes(b"")
    (root / "emb.f32").write_bytes(rng.standard_normal(big // 4).astype(np.float32).tobytes())
    (root / "sub" / "deeper" / "rand.bin").write_bytes(rng.bytes(1500 * 1024))
    (root / "link").symlink_to("sub/note-1.txt")
    (root / "dangling").symlink_to("../nowhere")
    os.chmod(root / "sub" / "note-2.txt", 0o600)
    os.chmod(root / "sub" / "note-3.txt", 0o755)
    os.utime(root / "sub" / "note-4.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return root


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a bit-exact restore must reproduce: content, links, modes, mtimes."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", p.read_bytes(), st.st_mode & 0o7777, st.st_mtime_ns)
    return out


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")
