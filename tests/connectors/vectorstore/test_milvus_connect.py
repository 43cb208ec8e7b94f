"""A Milvus connect refused at once (pymilvus's pooled channel closed by the server with
a GOAWAY) is tried once more; one that timed out is not. The real server's GOAWAY comes
after minutes idle, so pymilvus's client is replaced here; the connector's other tests
run against Milvus Lite and its server."""

from __future__ import annotations

from typing import Any

import pymilvus
import pytest

from drkit.connectors.vectorstore import milvus
from drkit.connectors.vectorstore.milvus import MilvusStore
from drkit.errors import EngineUnreachable


class _Client:
    """Fails its first ``failures`` constructions, as a GOAWAY'd channel does."""

    calls = 0
    failures = 1

    def __init__(self, **kw: Any) -> None:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise pymilvus.MilvusException(code=2, message="Fail connecting to server")

    def close(self) -> None:
        pass


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> type[_Client]:
    _Client.calls, _Client.failures = 0, 1
    monkeypatch.setattr(pymilvus, "MilvusClient", _Client)
    return _Client


def test_fast_failure_is_tried_again(client: type[_Client]) -> None:
    store = MilvusStore("milvus://127.0.0.1:19530")
    assert client.calls == 2
    assert isinstance(store._client, _Client)


def test_second_failure_is_reported(client: type[_Client]) -> None:
    client.failures = 2
    with pytest.raises(EngineUnreachable, match=r"127\.0\.0\.1:19530 is unreachable"):
        MilvusStore("milvus://127.0.0.1:19530")
    assert client.calls == 2


def test_slow_failure_is_not_retried(
    client: type[_Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(milvus, "FAST_FAILURE", 0.0)  # every failure counts as a timeout
    with pytest.raises(EngineUnreachable):
        MilvusStore("milvus://127.0.0.1:19530")
    assert client.calls == 1
