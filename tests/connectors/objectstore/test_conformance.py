"""The contract of ObjectStore (base.py), run against every backend and wrapper.

Backends: see ``BACKENDS`` in conftest.py (memory, local directory, S3 on a real moto
server, S3 on a real ``rclone serve s3``, and the Retrying/Faulty wrappers).
"""

from __future__ import annotations

import os
import threading

import pytest

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore
from drkit.connectors.objectstore.faulty import Faulty
from drkit.errors import DrkitError, ObjectExists, ObjectNotFound, StorageFull, UsageError

from .conftest import SECRETS


def _keys(store: ObjectStore, prefix: str = "") -> set[str]:
    return {info.key for info in store.list(prefix)}


@pytest.mark.parametrize("size", [0, 1, 1000, 70_000])
def test_put_get_round_trip(store: ObjectStore, size: int) -> None:
    data = os.urandom(size)
    store.put("obj", data)
    assert store.get("obj") == data
    assert store.stat("obj") == ObjectInfo("obj", size)
    assert store.exists("obj")


def test_bytes_like_input(store: ObjectStore) -> None:
    store.put("ba", bytearray(b"from a bytearray"))  # type: ignore[arg-type]
    store.put("mv", memoryview(b"xxfrom a memoryview")[2:])  # type: ignore[arg-type]
    assert store.get("ba") == b"from a bytearray"
    assert store.get("mv") == b"from a memoryview"


def test_overwrite_replaces_content(store: ObjectStore) -> None:
    store.put("k", b"first version, longer")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    assert store.stat("k").size == 6


def test_if_absent_creates_then_refuses(store: ObjectStore) -> None:
    store.put("lock", b"mine", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put("lock", b"theirs", if_absent=True)
    assert store.get("lock") == b"mine"
    store.delete("lock")
    store.put("lock", b"again", if_absent=True)
    assert store.get("lock") == b"again"


def _race(store: ObjectStore, key: str, writers: int) -> tuple[list[int], list[int]]:
    """``writers`` threads put ``key`` with if_absent at once; return winners and losers."""
    barrier = threading.Barrier(writers)
    winners: list[int] = []
    losers: list[int] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            store.put(key, f"writer {i}".encode(), if_absent=True)
            winners.append(i)
        except ObjectExists:
            losers.append(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return winners, losers


def test_if_absent_is_atomic_under_concurrency(store: ObjectStore) -> None:
    """Writers racing for one key: exactly one wins, and its bytes are what is stored."""
    if not store.capabilities.atomic_create:
        pytest.skip(f"{store!r} declares atomic_create=False (best effort only)")
    for round_ in range(3):
        winners, losers = _race(store, f"race/{round_}", writers=8)
        assert len(winners) == 1, winners
        assert len(losers) == 7
        assert store.get(f"race/{round_}") == f"writer {winners[0]}".encode()


def test_get_range(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4  # 1024 bytes
    store.put("r", data)
    assert store.get_range("r", 0, 10) == data[:10]
    assert store.get_range("r", 100, 200) == data[100:300]
    assert store.get_range("r", 1000, 24) == data[1000:]  # exactly up to the end
    assert store.get_range("r", 1000, 100) == data[1000:]  # past the end: the rest
    assert store.get_range("r", 0, 1024) == data
    assert store.get_range("r", 1024, 10) == b""  # at the end
    assert store.get_range("r", 5000, 10) == b""  # beyond the end
    assert store.get_range("r", 10, 0) == b""


def test_get_range_of_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get_range("empty", 0, 10) == b""


def test_get_range_rejects_negative(store: ObjectStore) -> None:
    store.put("r", b"abc")
    with pytest.raises(UsageError):
        store.get_range("r", -1, 2)
    with pytest.raises(UsageError):
        store.get_range("r", 0, -2)


def test_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("missing")
    with pytest.raises(ObjectNotFound):
        store.stat("missing")
    with pytest.raises(ObjectNotFound):
        store.get_range("missing", 0, 10)
    with pytest.raises(ObjectNotFound):
        store.get("dir/missing")
    assert not store.exists("missing")


def test_directory_like_prefix_is_not_an_object(store: ObjectStore) -> None:
    store.put("dir/inner", b"x")
    with pytest.raises(ObjectNotFound):
        store.get("dir")
    with pytest.raises(ObjectNotFound):
        store.stat("dir")
    assert not store.exists("dir")


def test_list_with_prefix(store: ObjectStore) -> None:
    contents = {
        "data/ab/1": b"1",
        "data/ab/2": b"22",
        "data/abc/3": b"333",
        "data/b/4": b"4444",
        "index/5": b"55555",
        "top": b"t",
    }
    for key, value in contents.items():
        store.put(key, value)
    listed = list(store.list())
    assert sorted(listed, key=lambda i: i.key) == [
        ObjectInfo(k, len(v)) for k, v in sorted(contents.items())
    ]
    assert _keys(store, "data/") == {"data/ab/1", "data/ab/2", "data/abc/3", "data/b/4"}
    assert _keys(store, "data/ab") == {"data/ab/1", "data/ab/2", "data/abc/3"}
    assert _keys(store, "data/ab/") == {"data/ab/1", "data/ab/2"}
    assert _keys(store, "data/ab/1") == {"data/ab/1"}
    assert _keys(store, "t") == {"top"}
    assert _keys(store, "nothing/") == set()
    assert _keys(store, "nothing") == set()


def test_list_empty_store(store: ObjectStore) -> None:
    assert list(store.list()) == []


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put("gone/soon", b"x")
    store.delete("gone/soon")
    assert not store.exists("gone/soon")
    store.delete("gone/soon")
    store.delete("never/there")
    assert _keys(store) == set()


def test_nested_keys(store: ObjectStore) -> None:
    keys = ["a/b/c/d/e/f/g", "a/b/x", "a/y", "snapshots/2026-11-26T20:00:00Z", "with space/é"]
    for i, key in enumerate(keys):
        store.put(key, str(i).encode())
    for i, key in enumerate(keys):
        assert store.get(key) == str(i).encode()
    assert _keys(store) == set(keys)
    assert _keys(store, "a/b/") == {"a/b/c/d/e/f/g", "a/b/x"}


def test_large_object(store: ObjectStore) -> None:
    """Bigger than one 5 MiB multipart chunk, so S3 stores upload it in parts."""
    size = 12 * 1024 * 1024 + 123
    data = os.urandom(size)
    store.put("big/object", data)
    assert store.stat("big/object").size == size
    assert store.get("big/object") == data
    boundary = 5 * 1024 * 1024
    assert store.get_range("big/object", boundary - 10, 20) == data[boundary - 10 : boundary + 10]
    assert store.get_range("big/object", size - 5, 100) == data[-5:]


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a/../b", "..", "../x", "a//b", "a/", "./a", "a\\b", "a\nb", ".drkit-tmp-x"],
)
def test_invalid_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(UsageError):
        store.put(key, b"x")
    with pytest.raises(UsageError):
        store.get(key)
    with pytest.raises(UsageError):
        store.delete(key)


def test_invalid_list_prefix_is_rejected(store: ObjectStore) -> None:
    with pytest.raises(UsageError):
        list(store.list("../"))


def test_secrets_never_shown(store: ObjectStore) -> None:
    """No secret given to any store appears in its repr, URL or error messages."""
    store.put("present", b"x")
    shown = [repr(store), str(store), store.url]
    for op in (
        lambda: store.get("absent"),
        lambda: store.stat("absent"),
        lambda: store.get_range("absent", 0, 1),
        lambda: store.put("present", b"y", if_absent=True),
        lambda: store.put("../escape", b"y"),
    ):
        with pytest.raises(DrkitError) as info:
            op()
        shown += [str(info.value), repr(info.value), str(info.value.hint)]
    for secret in SECRETS:
        for text in shown:
            assert secret not in text
    assert "@" not in store.url  # no user:password@ part


def test_full_disk_via_faulty_loses_nothing(store: ObjectStore) -> None:
    full = Faulty(store, full_after_bytes=1000)
    full.put("kept", b"k" * 600)
    with pytest.raises(StorageFull) as info:
        full.put("kept", b"n" * 600)  # an overwrite that does not fit
    assert info.value.hint is not None
    with pytest.raises(StorageFull):
        full.put("new", b"n" * 600)
    assert store.get("kept") == b"k" * 600
    assert not store.exists("new")


def test_leftovers_are_never_objects(store: ObjectStore) -> None:
    store.put("data/ab/k", b"v")
    assert list(store.leftovers()) == []  # completed writes leave nothing
    assert store.local_path("data/ab/k") is None or os.path.exists(
        str(store.local_path("data/ab/k"))
    )
