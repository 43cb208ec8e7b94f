"""Fixtures for the vector-store tests: every connector on its real engine, plus memory.

Servers (PostgreSQL + pgvector, ``chroma run``) start once per session and only when a
test asks for them, so ``-k memory`` runs without any server. Each test gets a fresh
store (a new directory or database file for embedded engines) and unique collection
names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.repository import KdfParams, Repository

from .engines import ChromaServer, MilvusServer, Postgres

ENGINES = [
    "memory",
    "qdrant",
    "chroma",
    "chroma-http",
    "pgvector",
    "lancedb",
    "milvus",
    "milvus-server",
]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma"))
    try:
        yield server
    finally:
        server.stop()


def store_url(engine: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    if engine == "memory":
        return "memory://"
    if engine == "qdrant":
        return f"qdrant+local://{tmp / 'qdrant'}"
    if engine == "chroma":
        return f"chroma://{tmp / 'chroma'}"
    if engine == "chroma-http":
        return str(request.getfixturevalue("chroma_server").url)
    if engine == "pgvector":
        return str(request.getfixturevalue("postgres").url)
    if engine == "lancedb":
        return f"lancedb://{tmp / 'lancedb'}"
    if engine == "milvus":
        return f"milvus-lite://{tmp / 'milvus.db'}"
    if engine == "milvus-server":
        return str(request.getfixturevalue("milvus_server").url)
    raise AssertionError(engine)


@pytest.fixture
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], VectorStore]]:
    """Open a fresh store of an engine by name; closed after the test."""
    opened: list[VectorStore] = []

    def _open(engine: str) -> VectorStore:
        sub = tmp_path / f"{engine}-{len(opened)}"
        sub.mkdir()
        store = open_vector_store(store_url(engine, request, sub))
        opened.append(store)
        return store

    yield _open
    for s in opened:
        s.close()


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, open_store: Callable[[str], VectorStore]) -> VectorStore:
    return open_store(request.param)


@pytest.fixture
def name() -> str:
    """A collection name unique in the session, valid in every engine."""
    return f"c{uuid.uuid4().hex[:12]}"


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A fresh repository on a real local directory (fast KDF)."""
    root = tmp_path / "repo"
    root.mkdir()
    r = Repository.init(LocalStore(root, fsync=False), "vector test password", kdf=KdfParams.fast())
    yield r
    r.close()
