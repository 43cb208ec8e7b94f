"""Error translation at the obstore boundary, against real servers on loopback.

- a closed port -> StoreUnreachable (fast: few internal retries);
- an HTTP server answering 503 / 507 -> TransientStorageError / StorageFull;
- wrong keys on rclone serve s3 -> StoragePermissionDenied;
- a missing bucket -> StorageError with a hint;
and no secret ever appears in an error, a repr or a URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.servers import RcloneS3Server, closed_port

from drkit.connectors.objectstore.retrying import Retrying
from drkit.connectors.objectstore.s3 import S3Store
from drkit.errors import (
    DrkitError,
    ObjectNotFound,
    SecretMissing,
    StorageError,
    StorageFull,
    StoragePermissionDenied,
    StoreUnreachable,
    TransientStorageError,
    UsageError,
)

from .conftest import BUCKET

SECRET = "s3cr3t-VALUE-that-must-never-leak"
TOKEN = "session-TOKEN-that-must-never-leak"


def _assert_clean(*things: object) -> None:
    for thing in things:
        for text in (str(thing), repr(thing)):
            assert SECRET not in text
            assert TOKEN not in text


class _Answer(BaseHTTPRequestHandler):
    status = 503
    calls = 0

    def _reply(self) -> None:
        type(self).calls += 1
        body = b"<?xml version='1.0'?><Error><Code>Oops</Code></Error>"
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[type[_Answer]]:
    """A loopback HTTP server that answers every request with ``handler.status``."""
    handler = type("Handler", (_Answer,), {"calls": 0, "status": 503})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    handler.endpoint = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _store(endpoint: str, **options: str) -> S3Store:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    return S3Store.from_url(
        f"s3://{BUCKET}/p?endpoint={endpoint}{query}",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SECRET,
        session_token=TOKEN,
    )


@pytest.mark.timeout(30)
def test_unreachable_endpoint() -> None:
    store = _store(f"http://127.0.0.1:{closed_port()}")
    for op in (
        lambda: store.get("k"),
        lambda: store.put("k", b"x"),
        lambda: store.stat("k"),
        lambda: list(store.list("a/")),
        lambda: store.delete("k"),
    ):
        with pytest.raises(StoreUnreachable) as info:
            op()
        assert not info.value.retryable
        assert info.value.hint is not None
        assert "127.0.0.1" in str(info.value)
        _assert_clean(info.value, store)


def test_server_errors_are_transient(answering: type[_Answer]) -> None:
    answering.status = 503
    store = _store(answering.endpoint, retries="0")  # type: ignore[attr-defined]
    with pytest.raises(TransientStorageError) as info:
        store.get("k")
    assert info.value.retryable
    assert "503" in str(info.value)
    assert "<?xml" not in str(info.value)  # response bodies are not copied into messages
    _assert_clean(info.value)

    answering.calls = 0
    retrying = Retrying(store, attempts=3, base_delay=0.001, max_delay=0.002)
    with pytest.raises(TransientStorageError):
        retrying.put("k", b"data")
    assert answering.calls == 3
    assert retrying.retries == 2


def test_insufficient_storage_is_full(answering: type[_Answer]) -> None:
    answering.status = 507
    store = _store(answering.endpoint, retries="0")  # type: ignore[attr-defined]
    with pytest.raises(StorageFull):
        store.put("k", b"data")


def test_wrong_secret_is_permission_denied(rclone_s3: RcloneS3Server) -> None:
    store = S3Store.from_url(
        f"s3://{BUCKET}/p?endpoint={rclone_s3.endpoint}",
        access_key_id=rclone_s3.access_key,
        secret_access_key=SECRET,
    )
    with pytest.raises(StoragePermissionDenied) as info:
        store.get("k")
    _assert_clean(info.value, store)
    with pytest.raises(StoragePermissionDenied):
        store.put("k", b"x")


def test_missing_bucket(moto_endpoint: str) -> None:
    store = S3Store.from_url(
        f"s3://no-such-bucket-here?endpoint={moto_endpoint}",
        access_key_id="testing",
        secret_access_key=SECRET,
    )
    with pytest.raises(StorageError) as info:
        store.put("k", b"x")
    assert not isinstance(info.value, ObjectNotFound)
    assert "bucket does not exist" in str(info.value)
    assert info.value.hint is not None
    _assert_clean(info.value)
    for op in (lambda: list(store.list()), lambda: store.get("k"), lambda: store.delete("k")):
        with pytest.raises(StorageError, match="bucket does not exist"):
            op()


def test_credentials_from_the_environment(
    rclone_s3: RcloneS3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", rclone_s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rclone_s3.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    store = S3Store.from_url(f"s3://{BUCKET}/env?endpoint={rclone_s3.endpoint}")
    store.put("k", b"via env")
    assert store.get("k") == b"via env"
    assert rclone_s3.secret_key not in f"{store!r} {store.url}"


def test_missing_credentials_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SecretMissing, match="AWS_ACCESS_KEY_ID"):
        S3Store.from_url("s3://bucket?endpoint=http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    with pytest.raises(SecretMissing, match="AWS_SECRET_ACCESS_KEY"):
        S3Store.from_url("s3://bucket?endpoint=http://127.0.0.1:9")


@pytest.mark.parametrize(
    "url",
    [
        f"s3://AKID:{SECRET}@bucket/prefix",
        f"s3://bucket?endpoint=http://AKID:{SECRET}@127.0.0.1:9",
    ],
)
def test_credentials_in_the_url_are_refused_without_echo(url: str) -> None:
    with pytest.raises(UsageError) as info:
        S3Store.from_url(url, access_key_id="a", secret_access_key="b")
    _assert_clean(info.value)
    assert info.value.hint is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket?endpoint=http://10.1.2.3:9000", "unencrypted"),
        ("s3://bucket?endpoint=ftp://127.0.0.1", "invalid S3 endpoint"),
        ("s3://bucket?colour=blue", "unknown option"),
        ("s3://bucket?retries=many", "not a whole number"),
        ("s3://bucket?timeout=5 mins", "invalid duration"),
        ("s3://bucket?conditional=perhaps", "not a boolean"),
        ("s3:///prefix", "names no bucket"),
        ("s3://bucket/../x", "invalid object key"),
    ],
)
def test_bad_s3_urls(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        S3Store.from_url(url, access_key_id="a", secret_access_key="b")


def test_plain_http_elsewhere_needs_consent() -> None:
    store = S3Store.from_url(
        "s3://bucket/p?endpoint=http://10.1.2.3:9000&allow_http=true",
        access_key_id="a",
        secret_access_key=SECRET,
    )  # constructing does no I/O
    assert store.url == "s3://bucket/p?endpoint=http://10.1.2.3:9000&region=us-east-1"
    _assert_clean(store, store.url)


def test_errors_are_drkit_errors_with_the_store_url(moto_endpoint: str) -> None:
    store = S3Store.from_url(
        f"s3://{BUCKET}/x?endpoint={moto_endpoint}",
        access_key_id="testing",
        secret_access_key=SECRET,
    )
    with pytest.raises(ObjectNotFound) as info:
        store.get("nope")
    assert isinstance(info.value, DrkitError)
    assert store.url in str(info.value)
    _assert_clean(info.value)
