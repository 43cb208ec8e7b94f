"""Real ``mlflow server`` processes with a SQLite backend on 127.0.0.1, for the MLflow
tests (import, registry backup and restore). Start-up, schema migrations included, takes
30-75 s here, so several servers start side by side and the fixtures are module-scoped."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from tests.servers import free_port, wait_ready

MLFLOW = Path(sys.executable).parent / "mlflow"


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def mlflow_servers(bases: list[Path]) -> Iterator[list[str]]:
    """One server per directory of ``bases`` (its SQLite store and, served over HTTP as
    ``mlflow-artifacts:``, its artifacts in there), all started at once; their URLs.
    Every server is stopped on the way out."""
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for base in bases:
            port = free_port()
            log = base / "server.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        str(MLFLOW), "server",
                        "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
                        "--artifacts-destination", str(base / "artifacts"),
                        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            procs.append((proc, f"http://127.0.0.1:{port}", log))
        for proc, url, log in procs:
            # mlflow imports a great deal before it listens: minutes on a loaded machine
            wait_ready(lambda u=url: _up(u), what="mlflow server", proc=proc, log=log, timeout=240)
        yield [url for _, url, _ in procs]
    finally:
        for proc, _, _ in procs:
            proc.terminate()
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
