"""The one table of vector-store URL schemes."""

from __future__ import annotations

import pytest

from drkit.connectors.vectorstore.memory import MemoryVectorStore
from drkit.connectors.vectorstore.registry import (
    BUILTIN,
    is_vector_store_url,
    open_vector_store,
    safe_url,
)
from drkit.errors import EngineUnreachable, UsageError


def test_every_builtin_scheme_names_a_class() -> None:
    import importlib

    for scheme, target in BUILTIN.items():
        module, _, cls = target.partition(":")
        assert hasattr(importlib.import_module(module), cls), scheme


def test_unknown_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        open_vector_store("weaviate://127.0.0.1:8080")
    assert info.value.exit_code == 2
    assert info.value.hint is not None
    assert "qdrant+local://" in info.value.hint
    assert not is_vector_store_url("weaviate://x")
    assert is_vector_store_url("lancedb:///tmp/x")
    assert not is_vector_store_url("kb")


def test_password_never_shown() -> None:
    url = "postgresql://app:s3cr3t-pw@127.0.0.1:1/db"
    assert "s3cr3t-pw" not in safe_url(url)
    with pytest.raises(UsageError) as info:
        open_vector_store(url.replace("postgresql", "nosuch"))
    assert "s3cr3t-pw" not in str(info.value)
    from drkit.connectors.vectorstore.pgvector import PgvectorStore

    store = PgvectorStore(url)  # connects lazily; nothing listens on port 1
    assert "s3cr3t-pw" not in store.url
    assert "s3cr3t-pw" not in repr(store)
    with pytest.raises(EngineUnreachable) as down:
        store.list_collections()
    assert "s3cr3t-pw" not in str(down.value)
    assert "***" in str(down.value)


def test_memory_urls_share_by_name() -> None:
    a, b, c = (open_vector_store(u) for u in ("memory://shared", "memory://shared", "memory://"))
    assert isinstance(a, MemoryVectorStore)
    from .data import config

    a.create(config("x1"))
    assert b.list_collections() == ["x1"]
    assert c.list_collections() == []
    a.drop("x1")
