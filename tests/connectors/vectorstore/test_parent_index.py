"""ParentIndex: the parent snapshot's index looked up by id, collisions of its 64-bit
hashes included (forced here with a hash that collides on purpose)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.support import SeenIds
from drkit.replication.vectors.parent_index import ParentIndex, any_repeated


def index(ids: list[str]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "hash": pa.array([bytes([i]) * 16 for i in range(len(ids))], pa.binary(16)),
            "segment": pa.array(range(len(ids)), pa.int32()),
            "row": pa.array(range(len(ids)), pa.int32()),
        }
    )


def first_letter(ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.array([ord(i[0]) for i in ids], dtype=np.int64)


def test_ids_are_found_where_the_index_has_them() -> None:
    parent = ParentIndex(index(["c", "a", "b"]))
    assert parent.find(pa.array(["a", "x", "c", "b"])).tolist() == [1, -1, 0, 2]
    assert parent.digests[2] == bytes([2]) * 16
    parent.seen[[0, 2]] = True
    assert parent.gone().to_pylist() == ["a"]
    assert ParentIndex(index([])).find(pa.array(["a"])).tolist() == [-1]


def test_an_id_of_a_known_hash_is_not_taken_for_the_known_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SeenIds, "hashes", staticmethod(first_letter))
    parent = ParentIndex(index(["apple", "banana"]))
    # "avocado" hashes like "apple": it is another id all the same
    assert parent.find(pa.array(["avocado", "apple", "banana"])).tolist() == [-1, 0, 1]


def test_two_parent_ids_of_one_hash_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SeenIds, "hashes", staticmethod(first_letter))
    parent = ParentIndex(index(["apple", "avocado", "banana"]))
    assert parent.find(pa.array(["avocado", "apple", "apricot", "banana"])).tolist() == [
        1,
        0,
        -1,
        2,
    ]


def test_any_repeated_finds_an_id_twice_across_chunks() -> None:
    a = pa.array(["a", "b", "c"])
    assert not any_repeated([a, pa.array(["d", "e"])])
    assert any_repeated([a, pa.array(["d", "b"])])
    assert any_repeated([pa.array(["x", "x"])])
    assert not any_repeated([])
    assert not any_repeated([pa.array([], pa.string())])


def test_any_repeated_compares_the_ids_where_hashes_collide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every id one hash: only the ids themselves tell a collision from a repeat
    monkeypatch.setattr(
        SeenIds, "hashes", staticmethod(lambda ids: np.zeros(len(ids), dtype=np.int64))
    )
    assert not any_repeated([pa.array(["a", "b"]), pa.array(["c"])])
    assert any_repeated([pa.array(["a", "b"]), pa.array(["a"])])
