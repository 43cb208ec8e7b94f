"""Vector-store snapshots in the repository: portable, incremental, verified.

Public API::

    snapshot_collection(repo, store, collection, component=...) -> SnapshotResult
    open_snapshot(repo, snapshot) -> Opened;  read_records(repo, opened) -> batches
    restore_collection(repo, snapshot, store, name) -> RestoreReport
    export_parquet(repo, snapshot, directory) -> ExportReport
    verify_collection(repo, snapshot, source) -> VerifyReport -> VerifyReport

Format: docs/repository-format.md section 10. Per-engine notes: docs/vector-stores.md.
"""

from drkit.replication.vectors.restore import (
    ExportReport,
    RestoreReport,
    VerifyReport,
    export_parquet,
    restore_collection,
    verify_collection,
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

__all__ = [
    "KIND",
    "ExportReport",
    "Opened",
    "RestoreReport",
    "SnapshotResult",
    "VerifyReport",
    "export_parquet",
    "open_snapshot",
    "read_records",
    "restore_collection",
    "snapshot_collection",
    "vector_snapshots",
    "verify_collection",
]
