"""``restore --replace`` swaps the restored collection in as each engine can, and says so.

On the real engines: Milvus (Lite) and Qdrant (local mode) move an alias the
application addresses in one call (atomic); a collection addressed by its own name is
swapped by two renames there and on Chroma (not atomic, and the report says why). The
application's other aliases follow the live name. A restored copy that does not match
the snapshot leaves the live collection, and its aliases, as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import VectorStore
from drkit.errors import CheckFailed
from drkit.replication.vectors import (
    collection_fingerprint,
    diff_collection,
    open_snapshot,
    replace_collection,
    snapshot_collection,
    user_collections,
)
from drkit.repository import Repository

from .test_verify import damaged, fill

ALIASED = ["milvus", "qdrant"]


def aliased(store: VectorStore, alias: str, n: int = 40) -> str:
    """A collection ``ALIAS_v1`` of ``n`` records the application reaches as ``alias``."""
    real = f"{alias}_v1"
    fill(store, real, n)
    store.move_alias(alias, real)
    assert store.aliases() == {alias: real}
    return real


@pytest.mark.parametrize("engine", ALIASED)
def test_replace_behind_an_alias_moves_the_alias_atomically(
    repo: Repository, open_store: Callable[[str], VectorStore], name: str, engine: str
) -> None:
    store = open_store(engine)
    real = aliased(store, name)
    assert user_collections(store) == [real]  # the application's own collection
    good = collection_fingerprint(store, name)  # read through the alias
    snap = snapshot_collection(repo, store, name, component="kb").snapshot
    store.delete_ids(name, sorted(good)[:6])  # the damage, written through the alias
    assert store.count(name) == 34
    store.move_alias(f"{name}_ro", real)  # a second alias of the same collection follows

    rep = replace_collection(repo, snap, store, name)
    assert (rep.action, rep.records) == ("replaced", 40)
    assert (rep.atomic, rep.swap, rep.swap_method) == (True, "atomic", "alias")
    assert rep.old == real  # the collection the alias named, dropped once checked
    restored = store.aliases()[name]
    assert restored.startswith(f"{name}_drkit_restored_")
    assert store.aliases() == {name: restored, f"{name}_ro": restored}
    assert store.list_collections() == [restored]
    assert store.count(name) == 40
    d = diff_collection(repo, open_snapshot(repo, snap), store, name)
    assert (d.records, d.total) == (40, 0)
    # backups see the collection under the alias, the name it had before the replace
    assert user_collections(store) == [name]
    # the application's query through the alias finds a restored record
    assert store.search(name, [0.0] * 15 + [1.0], 3)

    # the restored collection is the live one now, no leftover: a second replace keeps it
    # until the next restored one is checked, then drops it
    again = replace_collection(repo, snap, store, name)
    assert (again.atomic, again.old, again.cleaned) == (True, restored, ())
    assert store.list_collections() == [store.aliases()[name]] != [restored]


@pytest.mark.parametrize("engine", ["milvus", "qdrant", "chroma"])
def test_replace_of_a_collection_name_is_not_atomic_and_says_why(
    repo: Repository, open_store: Callable[[str], VectorStore], name: str, engine: str
) -> None:
    store = open_store(engine)
    ids = fill(store, name, 40)
    app = f"{name}_app"
    if store.capabilities.swap == "alias":  # an alias of the live collection follows it
        store.move_alias(app, name)
    snap = snapshot_collection(repo, store, name, component="kb").snapshot
    store.delete_ids(name, ids[:4])

    rep = replace_collection(repo, snap, store, name)
    assert (rep.atomic, rep.swap_method) == (False, "renames")
    assert rep.swap == f"not atomic: {store.capabilities.renames_caveat}"
    why = {"milvus": "not an alias", "qdrant": "not an alias", "chroma": "best effort"}
    assert why[engine] in rep.swap
    assert store.list_collections() == [name]
    assert store.count(name) == 40
    if store.capabilities.swap == "alias":
        assert store.aliases() == {app: name}
        assert store.count(app) == 40


@pytest.mark.parametrize(
    ("engine", "alias"),
    [("milvus", True), ("milvus", False), ("qdrant", True), ("qdrant", False), ("chroma", False)],
)
def test_a_failed_check_leaves_the_live_collection_untouched(
    repo: Repository,
    open_store: Callable[[str], VectorStore],
    name: str,
    engine: str,
    alias: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store(engine)
    real = aliased(store, name) if alias else name
    if not alias:
        fill(store, name, 40)
    snap = snapshot_collection(repo, store, name, component="kb").snapshot
    store.delete_ids(name, ["r1", "r2"])
    before = collection_fingerprint(store, name)
    aliases = store.aliases()

    load = store.import_batches

    def damaging(target: str, batches: Iterable[pa.RecordBatch]) -> int:
        return load(target, damaged(batches))  # one record in a hundred altered

    monkeypatch.setattr(store, "import_batches", damaging)
    with pytest.raises(CheckFailed, match=r"does not match snapshot .* left as it was"):
        replace_collection(repo, snap, store, name)
    assert store.list_collections() == [real]  # the restored copy was dropped
    assert store.aliases() == aliases
    # as it was: the snapshot less the two deleted records (Qdrant local mode gives cosine
    # vectors back as given, not normalised, once a rename has reopened its path)
    d = diff_collection(repo, open_snapshot(repo, snap), store, name)
    assert (sorted(d.missing), d.altered, d.extra) == (["r1", "r2"], [], [])
    if not store.capabilities.normalises_cosine:
        assert collection_fingerprint(store, name) == before


@pytest.mark.parametrize(("engine", "alias"), [("milvus", True), ("chroma", False)])
def test_a_failed_count_after_the_swap_puts_the_previous_collection_back(
    repo: Repository,
    open_store: Callable[[str], VectorStore],
    name: str,
    engine: str,
    alias: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store(engine)
    real = aliased(store, name) if alias else name
    if not alias:
        fill(store, name, 40)
    snap = snapshot_collection(repo, store, name, component="kb").snapshot
    store.delete_ids(name, ["r3"])
    aliases = store.aliases()
    counted = store.count
    # the live name counts one record short once the restored collection is under it
    monkeypatch.setattr(store, "count", lambda n: counted(n) - (n == name))
    with pytest.raises(CheckFailed, match="the previous collection was put back"):
        replace_collection(repo, snap, store, name)
    monkeypatch.undo()
    assert store.list_collections() == [real]
    assert store.aliases() == aliases
    assert store.count(name) == 39  # the previous collection, as it was
