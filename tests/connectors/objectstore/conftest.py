"""Fixtures for the object-store tests: one fresh, empty store per test, per backend.

Servers (moto, rclone serve s3) start once per session and only when a test needs them,
so ``-k memory`` runs without any server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.servers import (
    MOTO_ACCESS_KEY,
    MOTO_SECRET_KEY,
    RcloneS3Server,
    create_bucket,
    start_moto,
    start_rclone_s3,
)

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.faulty import Faulty
from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.objectstore.memory import MemoryStore
from drkit.connectors.objectstore.retrying import Retrying

BUCKET = "drkit-test"

StoreFactory = Callable[[], ObjectStore]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_moto(tmp_path_factory.mktemp("moto")) as server:
        create_bucket(server.endpoint, BUCKET)
        yield server.endpoint


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3Server]:
    root = tmp_path_factory.mktemp("rclone") / "s3"
    with start_rclone_s3(root, buckets=(BUCKET,)) as server:
        yield server


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _memory(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return MemoryStore()


def _local(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return LocalStore(tmp / f"store-{_unique()}")


def _s3_moto(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    from drkit.connectors.objectstore.s3 import S3Store

    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Store.from_url(
        f"s3://{BUCKET}/{_unique()}?endpoint={endpoint}",
        access_key_id=MOTO_ACCESS_KEY,
        secret_access_key=MOTO_SECRET_KEY,
    )


def _s3_rclone(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    from drkit.connectors.objectstore.s3 import S3Store

    server: RcloneS3Server = request.getfixturevalue("rclone_s3")
    return S3Store.from_url(
        f"s3://{BUCKET}/{_unique()}?endpoint={server.endpoint}",
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
    )


def _retrying_over_faults(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    # A third of all calls fail and a third of writes lose their acknowledgement:
    # Retrying must make that indistinguishable from a healthy store.
    faulty = Faulty(MemoryStore(), seed=7, fail_rate=0.3, lost_ack_rate=0.3)
    return Retrying(faulty, attempts=30, base_delay=0.0001, max_delay=0.001, seed=1)


def _faulty_passthrough(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    return Faulty(LocalStore(tmp / f"store-{_unique()}"), seed=3)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], ObjectStore]] = {
    "memory": _memory,
    "local": _local,
    "s3-moto": _s3_moto,
    "s3-rclone": _s3_rclone,
    "retrying-faulty-memory": _retrying_over_faults,
    "faulty-local": _faulty_passthrough,
}


@pytest.fixture(params=list(BACKENDS))
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of fresh, empty stores of one backend (closed after the test)."""
    made: list[ObjectStore] = []
    build = BACKENDS[request.param]

    def factory() -> ObjectStore:
        store = build(request, tmp_path)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def store(new_store: StoreFactory) -> ObjectStore:
    return new_store()
