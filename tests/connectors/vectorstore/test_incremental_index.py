"""Incremental snapshots store an index delta, not the whole index (issue 10 item 8):
the chain is listed whole in each snapshot and keeps the parent's segments (V6)."""

from __future__ import annotations

import random

import numpy as np

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.memory import MemoryVectorStore
from drkit.replication.vectors import open_snapshot, restore_collection, snapshot_collection
from drkit.replication.vectors.layout import INDEX, INDEX_CHAIN, MAX_DELTAS
from drkit.repository import Repository
from drkit.repository.files import load_tree
from drkit.repository.maintenance import check, forget, prune
from drkit.repository.retention import Policy

from .data import as_dict


def fill(store: MemoryVectorStore, n: int, dim: int) -> tuple[CollectionConfig, list[str]]:
    cfg = CollectionConfig(name="c", vectors=(VectorField("", dim, Metric.L2),))
    store.create(cfg)
    ids = [f"{i:08x}-doc" for i in range(n)]
    vecs = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    store.import_batches("c", [make_batch(cfg, ids, {"": vecs}, [{"i": i} for i in range(n)])])
    return cfg, ids


def update(store: MemoryVectorStore, cfg: CollectionConfig, ids: list[str], seed: int) -> None:
    vecs = np.random.default_rng(seed).standard_normal((len(ids), cfg.dimension))
    store.import_batches("c", [make_batch(cfg, ids, {"": vecs}, [{"u": seed}] * len(ids))])


def index_names(repo: Repository, snap_tree: str) -> list[str]:
    nodes = {n["name"]: n for n in load_tree(repo, snap_tree)}
    if INDEX in nodes:
        return [INDEX]
    return [n["name"] for n in load_tree(repo, nodes[INDEX_CHAIN]["subtree"])]


def test_v6_one_percent_changed_stores_a_delta(repo: Repository) -> None:
    src, dst = MemoryVectorStore(), MemoryVectorStore()
    cfg, ids = fill(src, 4000, 64)
    full = snapshot_collection(repo, src, "c", component="kb")
    full_bytes = full.snapshot.summary["snapshot_bytes"]
    assert index_names(repo, full.snapshot.tree) == [INDEX]  # the first: a full index
    rng = random.Random(3)
    expected = {full.snapshot.id: as_dict(src.export("c"))}
    live = list(ids)
    for gen in range(3):
        update(src, cfg, rng.sample(live, 40), seed=gen)  # 1% scattered updates
        gone = rng.sample(live, 4)
        src.delete_ids("c", gone)
        live = [i for i in live if i not in gone]
        res = snapshot_collection(repo, src, "c", component="kb")
        assert res.deleted == 4
        summary = res.snapshot.summary
        # was 10% here (the whole index: ~60 bytes a record at 64 dims)
        assert summary["snapshot_bytes"] < 0.03 * full_bytes, summary
        assert summary["new_bytes_stored"] < 0.03 * full.snapshot.summary["new_bytes_stored"]
        names = index_names(repo, res.snapshot.tree)
        assert names == [f"index-{i:03d}.arrow" for i in range(gen + 2)]
        expected[res.snapshot.id] = as_dict(src.export("c"))
    for sid, want in expected.items():
        restore_collection(repo, sid, dst, f"r{sid[:8]}")
        assert as_dict(dst.export(f"r{sid[:8]}")) == want
    # the newest alone: its chain's blobs are its own references, pruning keeps them
    newest = max(expected, key=lambda s: repo.find_snapshot(s).time)
    forget(repo, Policy(keep_last=1))
    prune(repo)
    assert check(repo, read_data=True).ok
    opened = open_snapshot(repo, newest)
    assert opened.manifest.records == len(live)
    restore_collection(repo, newest, dst, "after_prune")
    assert as_dict(dst.export("after_prune")) == expected[newest]


def test_v6_chain_is_rewritten_in_full_after_max_deltas(repo: Repository) -> None:
    src = MemoryVectorStore()
    cfg, ids = fill(src, 400, 4)
    snapshot_collection(repo, src, "c", component="kb")
    lengths = []
    for gen in range(MAX_DELTAS + 1):
        update(src, cfg, [ids[gen]], seed=gen)
        res = snapshot_collection(repo, src, "c", component="kb")
        lengths.append(len(index_names(repo, res.snapshot.tree)))
    assert lengths[:MAX_DELTAS] == list(range(2, MAX_DELTAS + 2))
    assert index_names(repo, res.snapshot.tree) == [INDEX]  # then a full index again
    assert res.records == 400


def test_a_large_change_writes_a_full_index(repo: Repository) -> None:
    src = MemoryVectorStore()
    cfg, ids = fill(src, 400, 4)
    snapshot_collection(repo, src, "c", component="kb")
    update(src, cfg, ids[:150], seed=1)  # more than a quarter of the records
    res = snapshot_collection(repo, src, "c", component="kb")
    assert index_names(repo, res.snapshot.tree) == [INDEX]
    assert res.changed == 150
    assert res.unchanged == 250
