"""Open a vector store by URL; the one table of built-in schemes.

==========================  ==========================================================
``memory://[NAME]``         in-process store (``NAME`` shares it within the process)
``qdrant+local:///PATH``    Qdrant local mode on a directory (qdrant-client, no server)
``qdrant+memory://``        Qdrant local mode in memory
``qdrant+http://HOST:PORT`` a Qdrant server (``qdrant+https`` with TLS)
``chroma:///PATH``          Chroma embedded (PersistentClient) on a directory
``chroma+http://HOST:PORT`` a Chroma server (``chroma run``)
``postgresql://USER@HOST:PORT/DB``  PostgreSQL with pgvector (also ``postgres://``,
                            ``pgvector://``); collections are tables
``lancedb:///PATH``         LanceDB embedded on a directory
``milvus-lite:///PATH.db``  Milvus Lite on a local file
``milvus://HOST:PORT``      a Milvus server (``milvus-lite server`` too)
==========================  ==========================================================

Opening for backup or export (``create=False``) never creates a store: the local
schemes (``qdrant+local``, ``chroma``, ``lancedb``, ``milvus-lite``) would otherwise
make an empty one at a mistyped path, so a missing path, or a directory that holds no
store of that engine, is refused first (:data:`LOCAL_STORES`).

Third-party connectors register under the ``drkit.vectorstores`` entry-point group
(name = URL scheme, value = ``module:Class``); built-ins win on a clash. A class takes
the URL as its only positional argument.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

from drkit.connectors.vectorstore.base import VectorStore
from drkit.errors import UsageError

BUILTIN: dict[str, str] = {
    "memory": "drkit.connectors.vectorstore.memory:MemoryVectorStore",
    "qdrant+local": "drkit.connectors.vectorstore.qdrant:QdrantStore",
    "qdrant+memory": "drkit.connectors.vectorstore.qdrant:QdrantStore",
    "qdrant+http": "drkit.connectors.vectorstore.qdrant:QdrantStore",
    "qdrant+https": "drkit.connectors.vectorstore.qdrant:QdrantStore",
    "chroma": "drkit.connectors.vectorstore.chroma:ChromaStore",
    "chroma+http": "drkit.connectors.vectorstore.chroma:ChromaStore",
    "postgresql": "drkit.connectors.vectorstore.pgvector:PgvectorStore",
    "postgres": "drkit.connectors.vectorstore.pgvector:PgvectorStore",
    "pgvector": "drkit.connectors.vectorstore.pgvector:PgvectorStore",
    "lancedb": "drkit.connectors.vectorstore.lancedb:LanceDBStore",
    "milvus-lite": "drkit.connectors.vectorstore.milvus:MilvusStore",
    "milvus": "drkit.connectors.vectorstore.milvus:MilvusStore",
}

#: Local schemes -> the file an existing store of that engine has under its path
#: ("" = the path itself is the store: a LanceDB directory, a Milvus Lite file).
LOCAL_STORES: dict[str, str] = {
    "qdrant+local": "meta.json",
    "chroma": "chroma.sqlite3",
    "lancedb": "",
    "milvus-lite": "",
}

_EXTRA = {
    "qdrant": "qdrant",
    "chroma": "chroma",
    "pgvector": "pgvector",
    "lancedb": "lancedb",
    "milvus": "milvus",
}


def schemes() -> dict[str, str]:
    """Every known scheme -> ``module:Class`` (entry points, then built-ins on top)."""
    table: dict[str, str] = {}
    for ep in entry_points(group="drkit.vectorstores"):
        table[ep.name] = ep.value
    table.update(BUILTIN)
    return table


def is_vector_store_url(url: str) -> bool:
    return "://" in url and urlsplit(url).scheme in schemes()


def open_vector_store(url: str, *, create: bool = True) -> VectorStore:
    """Open the store at ``url``. Raises :class:`UsageError` for an unknown scheme and
    :class:`EngineUnreachable` when the engine cannot be reached.

    ``create=False`` (backup, export, verify of a live store): a local store that does
    not exist raises :class:`UsageError` naming the path, with nothing created.
    """
    scheme = urlsplit(url).scheme if "://" in url else ""
    if not create:
        check_exists(url)
    table = schemes()
    target = table.get(scheme)
    if target is None:
        raise UsageError(
            f"unknown vector store URL {_safe(url)!r}",
            hint="use one of: " + ", ".join(f"{s}://" for s in sorted(table)),
        )
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = next((e for k, e in _EXTRA.items() if k in module_name), "vectors")
        raise UsageError(
            f"the {scheme}:// connector needs an optional dependency ({exc.name})",
            hint=f"pip install 'drkit[{extra}]'",
        ) from exc
    cls = getattr(module, cls_name)
    store = cls(url)
    if not isinstance(store, VectorStore):  # a third-party plug-in gone wrong
        raise UsageError(f"{target} is not a VectorStore")
    return store


def check_exists(url: str) -> None:
    """Raise :class:`UsageError` if ``url`` is a local store whose path holds no store."""
    parts = urlsplit(url)
    marker = LOCAL_STORES.get(parts.scheme)
    if marker is None:
        return
    path = Path(parts.path)
    engine = parts.scheme.split("+")[0]
    if not path.exists():
        raise UsageError(
            f"{engine} store {path} does not exist (from {url})",
            hint="check the path in the engine URL (the plan's vector_stores[].engine); "
            "a backup never creates the store it backs up",
        )
    if marker and not (path / marker).exists():
        raise UsageError(
            f"{path} is not a {engine} store (no {marker} in it; from {url})",
            hint="check the path and the scheme of the engine URL",
        )


def _safe(url: str) -> str:
    """``url`` without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


safe_url = _safe
