"""An engine that goes away mid-export: a clear EngineUnreachable, never a short stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.errors import EngineUnreachable

from .data import config, records
from .engines import ChromaServer, MilvusServer, Postgres, _ServerProcess, free_port


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.remove()


def test_postgres_stops_mid_export(own_postgres: Postgres, name: str) -> None:
    store = open_vector_store(own_postgres.url)
    cfg = config(name)
    store.create(cfg)
    store.import_batches(name, [records(cfg, 300)])
    stream = store.export(name, batch_size=10)
    first = next(stream)
    assert len(first) == 10
    own_postgres.stop()
    with pytest.raises(EngineUnreachable, match="during the export"):
        for _ in stream:
            pass
    assert not stream.cut.complete
    store.close()


@pytest.mark.parametrize("server_cls", [ChromaServer, MilvusServer], ids=["chroma", "milvus"])
def test_server_stops_mid_export(
    tmp_path: Path, name: str, server_cls: type[_ServerProcess]
) -> None:
    server = server_cls(tmp_path)
    try:
        store = open_vector_store(server.url)
        cfg = config(name)
        store.create(cfg)
        store.import_batches(name, [records(cfg, 50, flat=True)])
        stream = store.export(name, batch_size=10)
        next(stream)
        server.stop()
        with pytest.raises(EngineUnreachable):
            list(stream)
        assert not stream.cut.complete
        store.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        f"chroma+http://127.0.0.1:{free_port()}",
    ],
    ids=["postgres", "chroma"],
)
def test_nothing_listening(url: str) -> None:
    def touch() -> None:
        open_vector_store(url).list_collections()

    with pytest.raises(EngineUnreachable) as info:
        touch()
    assert info.value.hint
