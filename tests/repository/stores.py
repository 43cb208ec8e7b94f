"""The stores repository tests run on: the real LocalStore (fsync off for speed: the
crash tests kill processes, not the machine) and the in-memory store."""

from __future__ import annotations

from pathlib import Path

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.local import LocalStore


def open_test_store(root: Path) -> ObjectStore:
    root.mkdir(parents=True, exist_ok=True)
    return LocalStore(root, fsync=False)
