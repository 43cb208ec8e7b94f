"""Crash safety: a writer killed with SIGKILL at random points never leaves a partial object.

A child process writes objects whose content is derived from their key; the parent
kills it after a seeded random delay, then checks that every listed object is complete
and that a fresh write after the crash works. Seeded small N by default; the full
campaign runs with ``DRKIT_FULL_CAMPAIGN=1``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.servers import RcloneS3Server

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.local import LocalStore
from drkit.connectors.objectstore.s3 import S3Store

from .conftest import BUCKET

ROOT = Path(__file__).resolve().parents[3]
FULL = os.environ.get("DRKIT_FULL_CAMPAIGN") == "1"

_WRITER = """
import hashlib, os, sys
from drkit.connectors.objectstore.registry import open_store

def content(key):
    seed = hashlib.blake2b(key.encode()).digest()
    return seed * (3 * 1024 * 1024 // len(seed)) + key.encode()

store = open_store(sys.argv[1])
i = 0
while True:
    key = f"obj/{sys.argv[2]}-{i}"
    store.put(key, content(key), if_absent=(i % 2 == 0))
    if i == 0:
        print("ready", flush=True)  # one complete object, then the kill may come
    i += 1
"""


def _content(key: str) -> bytes:
    seed = hashlib.blake2b(key.encode()).digest()
    return seed * (3 * 1024 * 1024 // len(seed)) + key.encode()


def _campaign(store: ObjectStore, url: str, env: dict[str, str], trials: int, seed: int) -> int:
    rng = random.Random(seed)
    for trial in range(trials):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(trial)],
            stdout=subprocess.PIPE,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    listed = list(store.list("obj/"))  # a killed write's temp file is never listed
    for info in listed:
        data = store.get(info.key)
        assert data == _content(info.key), f"{info.key} is partial or corrupt"
        assert info.size == len(data)
    store.put("after/crash", b"still writable", if_absent=True)
    assert store.get("after/crash") == b"still writable"
    return len(listed)


def test_local_store_survives_sigkill(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "repo")
    trials = 100 if FULL else 4
    written = _campaign(store, str(tmp_path / "repo"), {}, trials=trials, seed=11)
    assert written >= trials  # each child completed at least one object before the kill


@pytest.mark.timeout(120)
def test_s3_store_survives_sigkill(rclone_s3: RcloneS3Server) -> None:
    url = f"s3://{BUCKET}/crash-{os.getpid()}?endpoint={rclone_s3.endpoint}"
    env = {"AWS_ACCESS_KEY_ID": rclone_s3.access_key, "AWS_SECRET_ACCESS_KEY": rclone_s3.secret_key}
    store = S3Store.from_url(
        url, access_key_id=rclone_s3.access_key, secret_access_key=rclone_s3.secret_key
    )
    trials = 50 if FULL else 3
    assert _campaign(store, url, env, trials=trials, seed=12) >= trials
