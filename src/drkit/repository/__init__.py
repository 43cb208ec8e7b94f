"""Content-addressed, encrypted, deduplicated, verified snapshots over any object store.

Format: ``docs/repository-format.md``. Public API::

    Repository.init(store, password) / Repository.open(store, password)
    repo.write_blob(data) -> id, repo.read_blob(id), repo.flush()
    backup_path(repo, path, component=...) -> Snapshot
    backup_store(repo, store, prefix, component=...) -> Snapshot   (S3 or any store)
    snapshot_files(repo, component, {"name": bytes}) -> Snapshot; read_file(repo, snap, name)
    restore(repo, snapshot, target) -> RestoreResult
    repo.snapshots(component), repo.find_snapshot(ref), repo.mark_verified(id, details)
    check(repo, read_data=...), forget(repo, policy), prune(repo), copy(src, dst), repair(repo, src)
"""

from drkit.repository.codec import BlobType
from drkit.repository.crypto import KdfParams
from drkit.repository.files import RestoreResult, backup_path, list_files, read_file, restore
from drkit.repository.keyring import KeyInfo
from drkit.repository.repo import Repository
from drkit.repository.snapshot import Snapshot, Verification
from drkit.repository.sources import backup_store, snapshot_files

__all__ = [
    "BlobType",
    "KdfParams",
    "KeyInfo",
    "Repository",
    "RestoreResult",
    "Snapshot",
    "Verification",
    "backup_path",
    "backup_store",
    "list_files",
    "read_file",
    "restore",
    "snapshot_files",
]
