"""S3 specifics: the conditional-write probe on real servers, lazy I/O, URL round trip."""

from __future__ import annotations

import uuid

import pytest
from tests.servers import MOTO_ACCESS_KEY, RcloneS3Server, closed_port

from drkit.connectors.objectstore.registry import open_store
from drkit.connectors.objectstore.s3 import S3Store
from drkit.errors import ObjectExists, StoreUnreachable

from .conftest import BUCKET, MOTO_TEST_SECRET


def _moto(endpoint: str, query: str = "") -> S3Store:
    return S3Store.from_url(
        f"s3://{BUCKET}/{uuid.uuid4().hex}?endpoint={endpoint}{query}",
        access_key_id=MOTO_ACCESS_KEY,
        secret_access_key=MOTO_TEST_SECRET,
    )


def _rclone(server: RcloneS3Server, query: str = "") -> S3Store:
    return S3Store.from_url(
        f"s3://{BUCKET}/{uuid.uuid4().hex}?endpoint={server.endpoint}{query}",
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
    )


def test_probe_finds_moto_enforces_conditional_writes(moto_endpoint: str) -> None:
    store = _moto(moto_endpoint)
    assert store.capabilities.atomic_create
    assert list(store.list()) == []  # the probe key is gone


def test_probe_finds_rclone_ignores_conditional_writes(rclone_s3: RcloneS3Server) -> None:
    store = _rclone(rclone_s3)
    assert not store.capabilities.atomic_create
    assert list(store.list()) == []
    # if_absent still refuses an existing key (check-then-put, best effort).
    store.put("k", b"first", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put("k", b"second", if_absent=True)
    assert store.get("k") == b"first"


def test_probe_leaves_nothing_on_the_server(moto_endpoint: str) -> None:
    import boto3

    store = _moto(moto_endpoint)
    assert store.capabilities.atomic_create
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=MOTO_ACCESS_KEY,
        aws_secret_access_key=MOTO_TEST_SECRET,
        region_name="us-east-1",
    )
    try:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix + "/")
    finally:
        client.close()
    assert listed.get("KeyCount", 0) == 0  # seen raw: the probe key was deleted


def test_explicit_conditional_skips_the_probe() -> None:
    # A dead endpoint: any probe would raise StoreUnreachable.
    store = _moto(f"http://127.0.0.1:{closed_port()}", "&conditional=true")
    assert store.capabilities.atomic_create
    assert "conditional=true" in store.url


@pytest.mark.timeout(30)
def test_opening_does_no_io_and_the_probe_reports_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    store = open_store(f"s3://{BUCKET}/p?endpoint=http://127.0.0.1:{closed_port()}")
    with pytest.raises(StoreUnreachable):
        _ = store.capabilities.atomic_create


def test_url_round_trip(moto_endpoint: str) -> None:
    store = _moto(moto_endpoint, "&region=eu-west-1")
    store.put("k", b"v")
    again = S3Store.from_url(
        store.url, access_key_id=MOTO_ACCESS_KEY, secret_access_key=MOTO_TEST_SECRET
    )
    assert again.url == store.url
    assert again.get("k") == b"v"
