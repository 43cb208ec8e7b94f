"""An in-memory object store: first-class for unit tests and rehearsals.

``MemoryStore()`` is private to its instance. ``MemoryStore.named("x")`` (and the URL
``mem://x``) shares one namespace per name within the process, so that two
``open_store("mem://x")`` calls see the same objects, like two clients of one bucket.
Thread-safe; ``put(if_absent=True)`` is atomic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import ClassVar

from drkit.connectors.objectstore.base import Capabilities, ObjectInfo, ObjectStore
from drkit.connectors.objectstore.keys import check_key, check_prefix, check_range
from drkit.errors import ObjectExists, ObjectNotFound, UsageError


class _Space:
    """One namespace of objects and the lock guarding it."""

    __slots__ = ("lock", "objects")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}


class MemoryStore(ObjectStore):
    capabilities = Capabilities(atomic_create=True, max_concurrency=8, local=True)

    _named: ClassVar[dict[str, _Space]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, _space: _Space | None = None, _name: str = "") -> None:
        self._space = _space if _space is not None else _Space()
        self.url = f"mem://{_name}"

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        """The process-wide store called ``name`` (created empty on first use)."""
        with cls._named_lock:
            space = cls._named.setdefault(name, _Space())
        return cls(_space=space, _name=name)

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """``mem://NAME`` is the shared store ``NAME``; ``mem://`` a fresh private one."""
        if not url.startswith("mem://"):
            raise UsageError(f"not a memory store URL: {url!r}", hint="use mem://NAME")
        name = url[len("mem://") :]
        if "?" in name or "#" in name:
            raise UsageError(f"mem:// takes no options: {url!r}", hint="use mem://NAME")
        return cls.named(name) if name else cls()

    @classmethod
    def forget(cls, name: str) -> None:
        """Drop the shared store ``name`` and its objects."""
        with cls._named_lock:
            cls._named.pop(name, None)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        check_key(key)
        value = bytes(data)  # a no-op for bytes; detaches bytearray/memoryview from callers
        objects = self._space.objects
        with self._space.lock:
            if if_absent and key in objects:
                raise ObjectExists(f"{key} already exists in {self.url}")
            objects[key] = value

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            return self._space.objects[key]
        except KeyError:
            raise ObjectNotFound(f"{key} not found in {self.url}") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        return self.get(key)[offset : offset + length]

    def stat(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.get(key)))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        with self._space.lock:
            snapshot = [(k, len(v)) for k, v in self._space.objects.items() if k.startswith(prefix)]
        for key, size in snapshot:
            yield ObjectInfo(key, size)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._space.lock:
            self._space.objects.pop(key, None)
