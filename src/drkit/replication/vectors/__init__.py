"""Vector-store snapshots in the repository: portable, incremental, verified.

Public API::

    snapshot_collection(repo, store, collection, component=...) -> SnapshotResult
    open_snapshot(repo, snapshot) -> Opened;  read_records(repo, opened) -> batches
    restore_collection(repo, snapshot, store, name) -> RestoreReport
    plan_restore(repo, snapshot, store, name) -> RestorePlan (what it would do; no write)
    replace_collection(repo, snapshot, store, name) -> ReplaceReport (verified, swapped in)
    export_parquet(repo, snapshot, directory) -> ExportReport
    verify_collection(repo, snapshot, source) -> VerifyReport
    diff_collection(repo, opened, store, name) -> CollectionDiff (fingerprint comparison)
    leftovers(store) / clean_leftovers(store, base): what killed runs left in an engine

Format: docs/repository-format.md section 10. Per-engine notes: docs/vector-stores.md.
"""

from drkit.replication.vectors.compare import (
    CollectionDiff,
    collection_fingerprint,
    diff_collection,
    fingerprint_diff,
    snapshot_fingerprint,
    user_collections,
)
from drkit.replication.vectors.leftovers import OLD_MARK, clean_leftovers, leftovers
from drkit.replication.vectors.replace import ReplaceReport, replace_collection
from drkit.replication.vectors.restore import (
    ExportReport,
    RestorePlan,
    RestoreReport,
    export_parquet,
    plan_restore,
    restore_collection,
)
from drkit.replication.vectors.snapshot import (
    KIND,
    Opened,
    SnapshotResult,
    open_snapshot,
    read_records,
    snapshot_collection,
    vector_snapshots,
)
from drkit.replication.vectors.verify import VerifyReport, verify_collection

__all__ = [
    "KIND",
    "OLD_MARK",
    "CollectionDiff",
    "ExportReport",
    "Opened",
    "ReplaceReport",
    "RestorePlan",
    "RestoreReport",
    "SnapshotResult",
    "VerifyReport",
    "clean_leftovers",
    "collection_fingerprint",
    "diff_collection",
    "export_parquet",
    "fingerprint_diff",
    "leftovers",
    "open_snapshot",
    "plan_restore",
    "read_records",
    "replace_collection",
    "restore_collection",
    "snapshot_collection",
    "snapshot_fingerprint",
    "user_collections",
    "vector_snapshots",
    "verify_collection",
]
