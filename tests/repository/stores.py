"""The store used by repository tests: the real LocalStore when it exists.

Until ``drkit.connectors.objectstore.local`` lands, a tiny private directory store
(atomic put by temp file + rename) stands in; it is not a connector of drkit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from drkit.connectors.objectstore.base import Capabilities, ObjectInfo, ObjectStore
from drkit.errors import ObjectExists, ObjectNotFound


class _DirStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"
        self.capabilities = Capabilities(atomic_create=True, max_concurrency=4, local=True)

    def _p(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        p = self._p(key)
        if if_absent and p.exists():
            raise ObjectExists(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.parent / f".tmp-{secrets.token_hex(6)}"
        tmp.write_bytes(data)
        os.replace(tmp, p)

    def get(self, key: str) -> bytes:
        try:
            return self._p(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._p(key), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def stat(self, key: str) -> ObjectInfo:
        try:
            return ObjectInfo(key, self._p(key).stat().st_size)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.exists():
            return
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                if f.startswith(".tmp-"):
                    continue
                key = str(Path(dirpath, f).relative_to(self.root))
                if key.startswith(prefix):
                    try:
                        yield ObjectInfo(key, Path(dirpath, f).stat().st_size)
                    except FileNotFoundError:
                        continue

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._p(key).unlink()


def open_test_store(root: Path) -> ObjectStore:
    try:
        from drkit.connectors.objectstore import registry  # type: ignore[attr-defined]
    except ImportError:
        return _DirStore(root)
    root.mkdir(parents=True, exist_ok=True)
    store: ObjectStore = registry.open_store(f"file://{root}")
    return store
