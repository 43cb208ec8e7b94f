"""Fixtures for the object-store tests: one fresh, empty store per test, per backend.

Servers (moto, rclone serve s3) start once per session and only when a test needs them,
so ``-k memory`` runs without any server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.servers import (
    MOTO_ACCESS_KEY,
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
#: moto accepts any keys: use a distinctive secret so that a leak would be visible.
MOTO_TEST_SECRET = "moto-SECRET-never-shown"
#: Every secret handed to a store in this session (the conformance suite checks that
#: none of them shows up in a repr, a URL or an error message).
SECRETS: set[str] = {MOTO_TEST_SECRET}

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
        secret_access_key=MOTO_TEST_SECRET,
    )


def _s3_rclone(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
    from drkit.connectors.objectstore.s3 import S3Store

    server: RcloneS3Server = request.getfixturevalue("rclone_s3")
    SECRETS.add(server.secret_key)
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


#: Real clouds: (URL variable, credential variables of which one must be set).
CLOUD_BACKENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "aws-s3": ("DRKIT_TEST_S3_URL", ("AWS_ACCESS_KEY_ID",)),
    "gcs": (
        "DRKIT_TEST_GCS_URL",
        ("GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT_KEY"),
    ),
    "azure": ("DRKIT_TEST_AZURE_URL", ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_KEY")),
}


def _cloud(name: str) -> Callable[[pytest.FixtureRequest, Path], ObjectStore]:
    def build(request: pytest.FixtureRequest, tmp: Path) -> ObjectStore:
        from drkit.connectors.objectstore.registry import open_store

        base = os.environ[CLOUD_BACKENDS[name][0]].rstrip("/")
        return open_store(f"{base}/{_unique()}")

    return build


def _configured(name: str) -> bool:
    url_var, credential_vars = CLOUD_BACKENDS[name]
    return bool(os.environ.get(url_var)) and any(os.environ.get(v) for v in credential_vars)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], ObjectStore]] = {
    "memory": _memory,
    "local": _local,
    "s3-moto": _s3_moto,
    "s3-rclone": _s3_rclone,
    "retrying-faulty-memory": _retrying_over_faults,
    "faulty-local": _faulty_passthrough,
    # Real clouds join the suite only when configured (test_cloud.py says how).
    **{name: _cloud(name) for name in CLOUD_BACKENDS if _configured(name)},
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
