"""``open_store(url)``: the one place that maps URL schemes to object-store connectors.

Built-ins are listed in ``BUILTIN`` as ``"module:attribute"`` references, the same form
entry points use, and loaded only when their scheme is used (so ``s3://`` needs obstore,
a local path does not). Third-party connectors register in the entry-point group
``drkit.objectstores``::

    [project.entry-points."drkit.objectstores"]
    myscheme = "my_package.store:MyStore.from_url"

The target is any callable ``(url: str) -> ObjectStore``. A built-in scheme cannot be
taken over by a plugin. A URL without ``scheme://`` is a local path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.retrying import Retrying
from drkit.errors import UsageError

ENTRY_POINT_GROUP = "drkit.objectstores"

BUILTIN: dict[str, str] = {
    "file": "drkit.connectors.objectstore.local:LocalStore.from_url",
    "mem": "drkit.connectors.objectstore.memory:MemoryStore.from_url",
    "s3": "drkit.connectors.objectstore.s3:S3Store.from_url",
    "gs": "drkit.connectors.objectstore.cloud:GCSStore.from_url",
    "az": "drkit.connectors.objectstore.cloud:AzureStore.from_url",
}

Opener = Callable[[str], ObjectStore]


def _load(reference: str) -> Opener:
    module_name, _, attribute = reference.partition(":")
    target: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    return target


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def schemes() -> dict[str, str]:
    """Every known scheme and the ``module:attribute`` that opens it."""
    table = dict(_plugins())
    table.update(BUILTIN)  # built-ins win
    return table


def scheme_of(url: str) -> str:
    """``file`` for plain paths, else the part before ``://`` (lower-cased)."""
    if "://" not in url:
        return "file"
    return urlsplit(url).scheme.lower() or url.split("://", 1)[0].lower()


def open_store(url: str, *, retry: bool = True) -> ObjectStore:
    """Open the store named by ``url``.

    The store comes wrapped in :class:`Retrying` unless ``retry=False``, so transient
    errors are retried and everything else fails fast (local stores raise nothing
    retryable, so the wrapper costs them one function call). Opening does no I/O.
    """
    if not url or not url.strip():
        raise UsageError("empty storage URL", hint="give a path, file:///path or s3://bucket")
    scheme = scheme_of(url)
    table = schemes()
    reference = table.get(scheme)
    if reference is None:
        raise UsageError(
            f"unknown storage scheme {scheme + '://'!r}",
            hint="use a path or one of: " + ", ".join(f"{s}://" for s in sorted(table)),
        )
    opener = _load(reference)
    store = opener(url)
    return Retrying(store) if retry else store
