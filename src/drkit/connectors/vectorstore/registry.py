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

Third-party connectors register under the ``drkit.vectorstores`` entry-point group
(name = URL scheme, value = ``module:Class``); built-ins win on a clash. A class takes
the URL as its only positional argument.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
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


def open_vector_store(url: str) -> VectorStore:
    """Open the store at ``url``. Raises :class:`UsageError` for an unknown scheme and
    :class:`EngineUnreachable` when the engine cannot be reached."""
    scheme = urlsplit(url).scheme if "://" in url else ""
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


def _safe(url: str) -> str:
    """``url`` without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


safe_url = _safe
