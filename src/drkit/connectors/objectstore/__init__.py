"""Object stores: one small interface (``base.ObjectStore``), many backends, wrappers.

``open_store(url)`` is the entry point (see ``registry.py`` and ``docs/storage.md``).
Backends: ``local.LocalStore``, ``memory.MemoryStore``, ``s3.S3Store``,
``cloud.GCSStore`` / ``cloud.AzureStore``. Wrappers: ``retrying.Retrying``,
``faulty.Faulty``. obstore (the ``s3`` extra) is imported only by network stores.
"""

from drkit.connectors.objectstore.base import Capabilities, ObjectInfo, ObjectStore
from drkit.connectors.objectstore.faulty import Faulty
from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.objectstore.memory import MemoryStore
from drkit.connectors.objectstore.registry import open_store
from drkit.connectors.objectstore.retrying import Retrying

__all__ = [
    "Capabilities",
    "Faulty",
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "ObjectStore",
    "Retrying",
    "open_store",
]
