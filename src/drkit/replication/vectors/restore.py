"""Restore a vector snapshot into any engine, export it as Parquet, and verify it.

Restore is atomic per collection (:func:`~drkit.connectors.vectorstore.transfer.load_collection`:
temporary collection, then rename or copy) and refuses a config the target cannot hold
before it writes anything. Verify is the restore test of DESIGN.md: restore into a
scratch collection, compare count, per-record checksums and golden queries against the
source, drop the scratch collection, and record the measured duration as achieved RTO.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.transfer import load_collection, map_config, temp_name
from drkit.errors import UsageError
from drkit.repository import Repository, Snapshot

from .compare import diff_collection
from .snapshot import Opened, Progress, open_snapshot, read_records

MIN_OVERLAP = 0.99


@dataclass(frozen=True, slots=True)
class RestoreReport:
    snapshot: str
    target: str
    collection: str
    records: int
    duration_s: float


def restore_collection(
    repo: Repository,
    snapshot: Snapshot | str | Opened,
    store: VectorStore,
    name: str | None = None,
    *,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore into ``store`` as ``name`` (default: the snapshotted collection's name).

    Raises :class:`IncompatibleTarget` / :class:`CollectionExists` before writing, and
    :class:`CorruptObject` (with the target left untouched) on damaged snapshot data.
    """
    t0 = time.perf_counter()
    opened = snapshot if isinstance(snapshot, Opened) else open_snapshot(repo, snapshot)
    m = opened.manifest
    target = name or m.collection
    map_config(m.config, store)  # refuse before reading any record
    count = load_collection(
        store,
        m.config,
        read_records(repo, opened, batch_size=batch_size, progress=progress),
        target,
        expected_rows=m.records,
    )
    return RestoreReport(
        opened.snapshot.id, store.url, target, count, round(time.perf_counter() - t0, 3)
    )


@dataclass(frozen=True, slots=True)
class ExportReport:
    snapshot: str
    directory: str
    files: list[str]
    records: int
    bytes: int


def export_parquet(
    repo: Repository, snapshot: Snapshot | str, directory: Path, *, batch_size: int = 5000
) -> ExportReport:
    """Write the snapshot's live records as ``records.parquet`` (zstd) plus
    ``config.json`` and ``snapshot.json`` into a new (or empty) ``directory``, atomically
    (a sibling temporary directory renamed into place)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} exists and is not an empty directory",
            hint="export into a new directory",
        )
    opened = open_snapshot(repo, snapshot)
    m = opened.manifest
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        from drkit.connectors.vectorstore.base import arrow_schema

        schema = arrow_schema(m.config)
        schema = schema.with_metadata({"drkit.config": json.dumps(m.config.to_json())})
        with pq.ParquetWriter(tmp / "records.parquet", schema, compression="zstd") as w:
            for batch in read_records(repo, opened, batch_size=batch_size):
                w.write_batch(batch)
        (tmp / "config.json").write_text(json.dumps(m.config.to_json(), indent=2, sort_keys=True))
        info = {
            "snapshot": opened.snapshot.id,
            "component": opened.snapshot.component,
            "time": opened.snapshot.time,
            "collection": m.collection,
            "source": m.source,
            "records": m.records,
            "cut": m.cut,
        }
        (tmp / "snapshot.json").write_text(json.dumps(info, indent=2, sort_keys=True))
        if directory.exists():
            directory.rmdir()
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.name for p in directory.iterdir())
    size = sum((directory / f).stat().st_size for f in files)
    return ExportReport(opened.snapshot.id, str(directory), files, m.records, size)


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
    overlap: float = 0.0
    duration_s: float = 0.0
    verification_id: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_collection(
    repo: Repository,
    snapshot: Snapshot | str,
    source: VectorStore,
    *,
    scratch: VectorStore | None = None,
    queries: int = 10,
    k: int = 10,
    batch_size: int = 5000,
    mark: bool = True,
) -> VerifyReport:
    """Restore test: restore into a scratch collection (of ``scratch``, default the
    ``source`` store), check count, per-record checksums and golden-query top-k overlap
    with the source collection (>= 0.99), drop the scratch collection. On success, and
    when ``mark``, records a verification in the repository (``mark_verified``)."""
    t0 = time.perf_counter()
    opened = open_snapshot(repo, snapshot)
    m = opened.manifest
    store = scratch or source
    report = VerifyReport(
        snapshot=opened.snapshot.id,
        component=opened.snapshot.component,
        collection=m.collection,
        target=store.url,
        ok=False,
        records_expected=m.records,
    )
    name = temp_name("verify_" + m.collection)
    try:
        restore_collection(repo, opened, store, name, batch_size=batch_size)
        report.records_restored = store.count(name)
        if report.records_restored != m.records:
            report.problems.append(
                f"restored {report.records_restored} records, the snapshot has {m.records}"
            )
        diff = diff_collection(repo, opened, store, name, sample=queries, batch_size=batch_size)
        report.checksum_mismatches = len(diff.altered) + len(diff.extra)
        report.tolerated = diff.tolerated
        if report.checksum_mismatches:
            report.problems.append(f"{report.checksum_mismatches} records differ from the snapshot")
        sample = diff.sample
        using = (m.config.vectors[0].name, map_config(m.config, store)[0].vectors[0].name)
        _golden(source, m.collection, store, name, sample, k, report, using)
    finally:
        store.drop(name, missing_ok=True)
    report.duration_s = round(time.perf_counter() - t0, 3)
    report.ok = not report.problems
    if report.ok and mark:
        report.verification_id = repo.mark_verified(
            opened.snapshot.id,
            {
                "kind": "vectors",
                "collection": m.collection,
                "target": store.url,
                "records": report.records_restored,
                "overlap": report.overlap,
                "queries": report.queries,
                "duration_s": report.duration_s,
                "rto_s": report.duration_s,
            },
        )
    return report


def _golden(
    source: VectorStore,
    collection: str,
    store: VectorStore,
    name: str,
    sample: list[np.ndarray[Any, Any]],
    k: int,
    report: VerifyReport,
    using: tuple[str, str],
) -> None:
    """Top-k overlap of the same queries on the source and on the restored copy."""
    if not sample:
        report.overlap = 1.0
        return
    overlaps = []
    for vec in sample:
        a = source.search(collection, vec.tolist(), k, using=using[0])
        b = store.search(name, vec.tolist(), k, using=using[1])
        overlaps.append(len(set(a) & set(b)) / max(1, min(k, len(a))))
    report.queries = len(sample)
    report.overlap = round(float(np.mean(overlaps)), 4)
    if report.overlap < MIN_OVERLAP:
        report.problems.append(
            f"golden queries: top-{k} overlap with the source is {report.overlap:.3f} "
            f"(< {MIN_OVERLAP}); the source changed since the snapshot, or the restore differs"
        )
