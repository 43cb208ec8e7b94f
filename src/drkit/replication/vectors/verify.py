"""The restore test of a vector snapshot: restore, compare, measure recall, record.

Engines answer searches from approximate indexes (HNSW, IVF): two healthy copies of a
collection disagree on a share of their top-k (0.78 overlap at 20k x 384 on pgvector
and Milvus), so comparing the restored index with the live one fails healthy stores.
Instead both are measured against *exact* search over the snapshot's records (brute
force, computed while the restored copy is read back for its checksums): the recall of
the restored index must be within :data:`RECALL_TOLERANCE` of the live index's recall
(or at least :data:`MIN_RECALL` when the live collection cannot be searched). Queries
are records of the snapshot picked by a seed derived from the snapshot id.

The live collection is compared with the snapshot too (count, missing, altered, extra
records) and reported: a live collection that moved on does not fail the restore test
(the snapshot is still restorable), but one whose vectors no longer have the snapshot's
shape (a re-embedded collection) does — restoring it would bring back another model's
vectors.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    ID,
    CollectionConfig,
    Metric,
    VectorStore,
    vectors_of,
)
from drkit.connectors.vectorstore.transfer import map_config, temp_name
from drkit.errors import CollectionNotFound
from drkit.repository import Repository, Snapshot

from .compare import CollectionDiff, diff_collection
from .leftovers import clean_leftovers
from .reading import read_ahead
from .restore import restore_opened
from .snapshot import Opened, open_snapshot, read_records, same_shape

#: the restored index may find this much less of the exact top-k than the live index
RECALL_TOLERANCE = 0.05
#: the restored index's recall when there is no live index to compare with
MIN_RECALL = 0.5
#: ids listed per kind of live difference in a report
LISTED = 20
#: search efforts (times k; HNSW ef, IVF probes) the golden queries climb through on
#: engines that take one (``capabilities.search_effort``) until the restored index
#: reaches its floor: a healthy approximate index nears the exact top-k as its
#: candidate list grows, a damaged or mis-built one does not
EFFORTS = (4, 16, 64, 256)
#: the first effort is at least this (the engines' usual default candidate list)
MIN_EFFORT = 64


@dataclass(slots=True)
class VerifyReport:
    """The restore test's result; ``duration_s`` is the achieved RTO."""

    snapshot: str
    component: str
    collection: str
    target: str
    ok: bool
    records_expected: int
    records_restored: int = 0
    checksum_mismatches: int = 0
    tolerated: int = 0
    queries: int = 0
    #: top-k overlap of the live and the restored index (for information: two
    #: approximate indexes disagree even when both are healthy)
    overlap: float = 0.0
    #: share of the exact top-k (over the snapshot's records) each index finds
    recall_restored: float = 0.0
    recall_live: float | None = None
    #: the candidate list (HNSW ef, IVF probes) the restored index was searched with at
    #: the end (None: the engine's default, it takes none)
    search_effort: int | None = None
    duration_s: float = 0.0
    verification_id: str | None = None
    problems: list[str] = field(default_factory=list)
    #: the live collection against the snapshot: "same", "differs", "absent", "reshaped"
    live: str = "same"
    live_records: int | None = None
    live_missing: int = 0
    live_altered: int = 0
    live_extra: int = 0
    live_sample: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: where the time went, seconds per phase: ``live`` (comparing the live collection),
    #: ``restore`` (into the scratch collection), ``check`` (reading it back, every
    #: record's checksum), ``recall`` (the golden queries); the RTO of a restore that
    #: must be checked before traffic returns is restore + check + recall
    phases_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Exact:
    """Running exact top-k of ``queries`` over the batches it is shown (brute force)."""

    def __init__(self, queries: np.ndarray[Any, Any], metric: Metric, k: int) -> None:
        q = np.asarray(queries, dtype=np.float64)
        if metric is Metric.COSINE:
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        self.q, self.metric, self.k = q, metric, k
        self.scores = np.full((len(q), 0), -np.inf)
        self.ids = np.empty((len(q), 0), dtype=object)

    def add(self, ids: list[str], vectors: np.ndarray[Any, Any]) -> None:
        if not len(ids) or not len(self.q):
            return
        m = np.asarray(vectors, dtype=np.float64)
        if self.metric is Metric.COSINE:
            m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-30)
        s = self.q @ m.T
        if self.metric is Metric.L2:  # -|q - m|^2 without the constant |q|^2
            s = 2 * s - np.sum(m * m, axis=1)[None, :]
        scores = np.concatenate([self.scores, s], axis=1)
        fresh = np.tile(np.array(ids, dtype=object), (len(self.q), 1))
        names = np.concatenate([self.ids, fresh], axis=1)
        keep = min(self.k, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        self.scores = np.take_along_axis(scores, top, 1)
        self.ids = np.take_along_axis(names, top, 1)

    def top(self, i: int) -> set[str]:
        return {str(x) for x in self.ids[i]}


def _pick(n: int, queries: int, seed: str) -> list[int]:
    rng = random.Random(int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8).digest()))
    return sorted(rng.sample(range(n), min(n, queries)))


def _tap(
    batches: Iterator[pa.RecordBatch], positions: list[int], column: str, out: list[Any]
) -> Iterator[pa.RecordBatch]:
    """Pass ``batches`` through, keeping the vectors at ``positions`` (global row numbers)."""
    offset, want = 0, list(positions)
    for batch in batches:
        end = offset + len(batch)
        while want and want[0] < end:
            out.append(vectors_of(batch.slice(want.pop(0) - offset, 1), column)[0])
        offset = end
        yield batch


def verify_collection(
    repo: Repository,
    snapshot: Snapshot | str,
    source: VectorStore,
    *,
    scratch: VectorStore | None = None,
    queries: int = 100,
    k: int = 10,
    batch_size: int = 5000,
    mark: bool = True,
) -> VerifyReport:
    """Restore test: restore into a scratch collection (of ``scratch``, default the
    ``source`` store), check its count and every record's checksum, measure the recall of
    its index and of the live collection's against exact search over the snapshot's
    records, compare the live collection with the snapshot, drop the scratch collection.
    On success, and when ``mark``, records a verification in the repository."""
    t0 = time.perf_counter()
    with repo.lock(exclusive=False):
        opened = open_snapshot(repo, snapshot)
        store = scratch or source
        report = VerifyReport(
            snapshot=opened.snapshot.id,
            component=opened.snapshot.component,
            collection=opened.manifest.collection,
            target=store.url,
            ok=False,
            records_expected=opened.manifest.records,
        )
        started = time.perf_counter()
        _live(repo, opened, source, report, batch_size)
        _took(report, "live", started)
        _restored(repo, opened, source, store, report, queries, k, batch_size)
        report.duration_s = round(time.perf_counter() - t0, 3)
        report.ok = not report.problems
        if report.ok and mark:
            report.verification_id = repo.mark_verified(
                opened.snapshot.id,
                {
                    "kind": "vectors",
                    "collection": report.collection,
                    "target": store.url,
                    "records": report.records_restored,
                    "recall_restored": report.recall_restored,
                    "recall_live": report.recall_live,
                    "overlap": report.overlap,
                    "search_effort": report.search_effort,
                    "queries": report.queries,
                    "live": report.live,
                    "duration_s": report.duration_s,
                    "rto_s": report.duration_s,
                    "phases_s": report.phases_s,
                },
            )
    return report


def _live(
    repo: Repository, opened: Opened, source: VectorStore, report: VerifyReport, batch_size: int
) -> None:
    """Compare the live collection with the snapshot (what the report says it sees)."""
    m = opened.manifest
    try:
        live_config = source.describe(m.collection)
    except CollectionNotFound:
        report.live = "absent"
        report.notes.append(f"the live collection {m.collection!r} is not in {source.url}")
        return
    if not same_shape(m.config, live_config):
        report.live = "reshaped"
        have, want = _shape(live_config), _shape(m.config)
        report.problems.append(
            f"the live collection's vectors ({have}) are not the snapshot's ({want}): "
            "it was re-embedded or replaced since; this snapshot would restore other vectors"
        )
        return
    d = diff_collection(repo, opened, source, m.collection, batch_size=batch_size)
    _note_live(report, d)


def _shape(config: CollectionConfig) -> str:
    return ", ".join(f"{v.column}: {v.dimension}-d {v.metric.value}" for v in config.vectors)


def _note_live(report: VerifyReport, d: CollectionDiff) -> None:
    report.live_records = d.records
    report.live_missing, report.live_altered, report.live_extra = (
        len(d.missing),
        len(d.altered),
        len(d.extra),
    )
    if d.total:
        report.live = "differs"
        report.live_sample = {
            "missing": d.missing[:LISTED],
            "altered": d.altered[:LISTED],
            "extra": d.extra[:LISTED],
        }
        report.notes.append(
            f"the live collection differs from the snapshot: {len(d.missing)} missing, "
            f"{len(d.altered)} altered, {len(d.extra)} extra of {report.records_expected} "
            f"records ({d.records} live); a restore would bring back the snapshot's"
        )


def _restored(
    repo: Repository,
    opened: Opened,
    source: VectorStore,
    store: VectorStore,
    report: VerifyReport,
    queries: int,
    k: int,
    batch_size: int,
) -> None:
    m = opened.manifest
    field0 = m.config.vectors[0]
    picked: list[Any] = []
    positions = _pick(m.records, queries, opened.snapshot.id)
    for left in clean_leftovers(store, "verify_" + m.collection):
        report.notes.append(f"removed {left!r}, left by an interrupted restore test")
    name = temp_name("verify_" + m.collection)
    try:
        records = read_ahead(read_records(repo, opened, batch_size=batch_size))
        stream = _tap(records, positions, field0.column, picked)
        phase = time.perf_counter()
        with closing(records):  # its helper stops before anything else
            restore_opened(repo, opened, store, name, batches=stream)
        report.records_restored = store.count(name)
        phase = _took(report, "restore", phase)
        if report.records_restored != m.records:
            report.problems.append(
                f"restored {report.records_restored} records, the snapshot has {m.records}"
            )
        exact = _Exact(np.array(picked).reshape(len(picked), field0.dimension), field0.metric, k)

        def visit(batch: pa.RecordBatch) -> None:
            exact.add(batch.column(ID).to_pylist(), vectors_of(batch, field0.column))

        diff = diff_collection(repo, opened, store, name, batch_size=batch_size, visit=visit)
        report.checksum_mismatches = len(diff.altered) + len(diff.extra) + len(diff.missing)
        report.tolerated = diff.tolerated
        if report.checksum_mismatches:
            report.problems.append(
                f"{report.checksum_mismatches} records of the restored copy differ from the "
                f"snapshot ({len(diff.missing)} missing, {len(diff.altered)} altered, "
                f"{len(diff.extra)} extra)"
            )
        phase = _took(report, "check", phase)
        _recall(m.collection, source, store, name, opened, picked, exact, k, report)
        _took(report, "recall", phase)
    finally:
        store.drop(name, missing_ok=True)


def _took(report: VerifyReport, phase: str, since: float) -> float:
    """Record the seconds ``phase`` took since ``since``; the time now."""
    now = time.perf_counter()
    report.phases_s[phase] = round(now - since, 3)
    return now


def _recall(
    collection: str,
    source: VectorStore,
    store: VectorStore,
    name: str,
    opened: Opened,
    picked: list[Any],
    exact: _Exact,
    k: int,
    report: VerifyReport,
) -> None:
    """Recall of the restored (and live) index against the exact top-k."""
    if not picked:
        report.recall_restored = 1.0
        return
    config = opened.manifest.config
    restored_using = map_config(config, store)[0].vectors[0].name
    live_ok = report.live in ("same", "differs")
    live_using = map_config(config, source)[0].vectors[0].name if live_ok else ""
    efforts: list[int | None] = [None]
    if store.capabilities.search_effort:
        efforts = [max(MIN_EFFORT, m * k) for m in EFFORTS]
    live_found: dict[int | None, list[list[str]]] = {}
    queries = [vec.tolist() for vec in picked]

    def found_by(s: VectorStore, n: str, using: str, effort: int | None) -> list[list[str]]:
        # one call for all the queries: LanceDB answers them in one pass over the table
        return s.search_many(n, queries, k, using=using, effort=effort or None)

    def live_at(effort: int | None) -> list[list[str]]:
        # the live index is searched as widely as the restored one (where it takes an
        # effort), so a wider search never favours the restored copy over its yardstick
        at = effort if source.capabilities.search_effort else None
        if at not in live_found:
            # an answer that was already the exact top-k cannot get better (Milvus Lite
            # searches growing segments by brute force, whatever the effort)
            exact_one = next((f for f in live_found.values() if share(f) == 1.0), None)
            live_found[at] = exact_one or found_by(source, collection, live_using, at)
        return live_found[at]

    def share(found: list[list[str]]) -> float:
        got = [len(exact.top(i) & set(f)) / max(1, len(exact.top(i))) for i, f in enumerate(found)]
        return round(float(np.mean(got)), 4)

    report.queries = len(picked)
    # the live side may be searched exhaustively where the restored copy goes through its
    # index (Milvus searches growing segments by brute force, a restored copy is sealed):
    # climb the candidate list before calling the restored index damaged. The floor is
    # the same at every effort: a damaged index stays below it however wide the search.
    floor, against = MIN_RECALL, f"{MIN_RECALL}"
    for effort in efforts:
        found = found_by(store, name, restored_using, effort)
        report.recall_restored, report.search_effort = share(found), effort
        if live_ok:
            live = live_at(effort)
            report.recall_live = share(live)
            o = [
                len(set(a) & set(b)) / max(1, min(k, len(a)))
                for a, b in zip(live, found, strict=True)
            ]
            report.overlap = round(float(np.mean(o)), 4)
        # the live index answers for records the snapshot may no longer hold: its recall
        # is only a yardstick while the live collection is the snapshot's
        if report.recall_live is not None and report.live == "same":
            floor = report.recall_live - RECALL_TOLERANCE
            against = f"the live index's {report.recall_live:.3f} - {RECALL_TOLERANCE}"
        if report.recall_restored >= floor:
            break
    if report.recall_restored < floor:
        at = (
            f" (searched with a candidate list of {report.search_effort})"
            if report.search_effort
            else ""
        )
        report.problems.append(
            f"golden queries: the restored index finds {report.recall_restored:.3f} of the "
            f"exact top-{k} over the snapshot's records{at} (< {against}); its index is "
            "damaged or was built with other parameters"
        )
