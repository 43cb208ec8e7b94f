"""The object-store interface: a handful of byte-level operations on keys.

Keys are ``/``-separated relative paths (``data/ab/abcdef...``) without a leading
slash, ``..`` or empty segments. Every implementation passes the shared conformance
suite in ``tests/connectors/objectstore/``.

Errors (see :mod:`drkit.errors`): a missing key raises :class:`ObjectNotFound`; an
unreachable endpoint :class:`StoreUnreachable`; a retryable hiccup
:class:`TransientStorageError`; no space :class:`StorageFull`. Implementations translate
their library's exceptions at this boundary.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass

from drkit.errors import ObjectNotFound


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do; callers read this instead of checking types."""

    #: ``put(if_absent=True)`` is atomic against concurrent writers (S3 conditional
    #: writes, O_EXCL / link on a local disk). When False, it is best effort.
    atomic_create: bool
    #: The backend keeps old versions of overwritten/deleted objects.
    versions: bool = False
    #: A sensible number of concurrent requests against this store.
    max_concurrency: int = 4
    #: True for stores on this machine's disk (rename is cheap, latency is low).
    local: bool = False


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(abc.ABC):
    """A flat namespace of immutable-by-convention byte objects."""

    #: The store's URL with any credentials removed (safe to log and show).
    url: str
    capabilities: Capabilities

    @abc.abstractmethod
    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically: readers see all of it or nothing.

        Overwrites an existing object unless ``if_absent``; then an existing key raises
        :class:`ObjectExists` (atomically when ``capabilities.atomic_create``).
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Return the whole object. Raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (fewer only at the end of the object).

        An ``offset`` at or past the end returns ``b""`` (the object exists, so this is
        not an error); a negative ``offset`` or ``length`` is a :class:`UsageError`.

        Raises :class:`ObjectNotFound`.
        """

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Return the size of an object. Raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``, in no particular order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``. Idempotent: deleting a missing key is not an error."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def create_container(self) -> bool:
        """Create the bucket (or container) the store lives in; idempotent. Returns False
        when this store cannot create one (then the user must); raises on failure."""
        return False

    def local_path(self, key: str) -> str | None:
        """The file that holds ``key`` when the store is a directory on this machine
        (``capabilities.local``), for tuning such as dropping its page cache; else None."""
        return None

    def leftovers(self, older_than: float = 0.0) -> Iterator[ObjectInfo]:
        """Temporary files that interrupted writes left behind (``.drkit-tmp-*`` on a
        local disk), last modified more than ``older_than`` seconds ago. They are never
        listed by :meth:`list`. Stores whose writes cannot leave any yield nothing."""
        return iter(())

    def remove_leftover(self, key: str) -> None:  # noqa: B027 - stores without leftovers
        """Delete one object yielded by :meth:`leftovers` (idempotent)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections; the store is unusable afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class StoreWrapper(ObjectStore):
    """Base of stores that add behaviour around another store (``Retrying``, ``Faulty``).

    Keeps the wrapped store's URL, reads its capabilities through (S3 may probe them on
    first use) and closes it; subclasses implement the operations.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.inner = store
        self.url = store.url

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self.inner.capabilities = value

    def create_container(self) -> bool:
        return self.inner.create_container()

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    def leftovers(self, older_than: float = 0.0) -> Iterator[ObjectInfo]:
        return self.inner.leftovers(older_than)

    def remove_leftover(self, key: str) -> None:
        self.inner.remove_leftover(key)

    def close(self) -> None:
        self.inner.close()
