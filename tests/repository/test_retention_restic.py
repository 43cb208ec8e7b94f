"""drkit's keep-* rules against the real ``restic forget --dry-run`` on the same snapshot times:
the 240 of test_retention.py's table (every 6 hours for 60 days) and 48 irregular ones.

restic's semantics are the reference (DESIGN.md: retention with restic's semantics), so
the expected answer is restic's own, not one computed by hand. restic is installed by the
test set-up (``scripts/system-deps.sh``); its absence fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

from drkit.repository.retention import Policy, apply_policy
from drkit.repository.snapshot import Snapshot

#: irregular gaps (hours), so that hours, days, ISO weeks (across a year's end), months and
#: years each hold several snapshots or none; seeded so that the series repeats
_GAPS_H = (1, 1, 2, 5, 13, 24, 30, 71, 170, 400, 900)
BASE = datetime(2023, 11, 20, 9, 15, tzinfo=UTC)


def _series(n: int = 48) -> list[datetime]:
    rng = random.Random(12)
    times, t = [], BASE
    for _ in range(n):
        times.append(t)
        t += timedelta(hours=rng.choice(_GAPS_H), minutes=rng.randrange(60))
    return times


TIMES = _series()


#: the series of test_retention.py's hand-checked table: every 6 hours for 60 days
SERIES = [datetime(2024, 1, 1, 12, 0, tzinfo=UTC) + timedelta(hours=6 * i) for i in range(240)]
#: one restic "host" per series, so that one repository holds both
HOSTS = {"irregular": TIMES, "every-6h": SERIES}


@dataclass(frozen=True)
class Restic:
    env: dict[str, str]

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["restic", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


class _SnapshotWriter:
    """Writes restic snapshot manifests directly, encrypted as restic does (repository
    format 1: AES-256-CTR + Poly1305-AES under the master key), so that hundreds of
    snapshot times cost no restic run each (a ``restic backup`` takes about 0.6 s)."""

    def __init__(self, masterkey: dict[str, Any], repo: Path) -> None:
        self.enc = base64.b64decode(masterkey["encrypt"])
        self.mac_k = base64.b64decode(masterkey["mac"]["k"])
        self.mac_r = base64.b64decode(masterkey["mac"]["r"])
        self.repo = repo

    def _encrypt(self, plain: bytes) -> bytes:
        iv = os.urandom(16)
        enc = Cipher(algorithms.AES(self.enc), modes.CTR(iv)).encryptor()
        ciphertext = enc.update(plain) + enc.finalize()
        aes = Cipher(algorithms.AES(self.mac_k), modes.ECB()).encryptor()
        s = aes.update(iv) + aes.finalize()
        return iv + ciphertext + Poly1305.generate_tag(self.mac_r + s, ciphertext)

    def write(self, doc: dict[str, Any]) -> None:
        data = self._encrypt(json.dumps(doc).encode())
        (self.repo / "snapshots" / hashlib.sha256(data).hexdigest()).write_bytes(data)


@pytest.fixture(scope="module")
def restic(tmp_path_factory: pytest.TempPathFactory) -> Restic:
    if shutil.which("restic") is None:
        pytest.fail("restic is not installed: run `make setup` (scripts/system-deps.sh)")
    base = tmp_path_factory.mktemp("restic")
    data = base / "data"
    data.mkdir()
    (data / "file").write_text("one tree for every snapshot\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base),
        "TZ": "UTC",  # restic buckets by the snapshot's own time, given here in UTC
        "RESTIC_REPOSITORY": str(base / "repo"),
        "RESTIC_PASSWORD": "retention reference",
        "RESTIC_CACHE_DIR": str(base / "cache"),
    }
    r = Restic(env)
    r.run("init", "-q", "--repository-version", "1")
    r.run("backup", "-q", "--host", "seed", str(data))  # a real tree for the manifests
    (seed,) = json.loads(r.run("snapshots", "--json"))
    writer = _SnapshotWriter(json.loads(r.run("cat", "masterkey")), base / "repo")
    for host, times in HOSTS.items():
        for t in times:
            writer.write(
                {
                    "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "tree": seed["tree"],
                    "paths": seed["paths"],
                    "hostname": host,
                    "username": seed["username"],
                }
            )
    listed = json.loads(r.run("snapshots", "--json", "--no-cache"))
    assert len(listed) == 1 + len(TIMES) + len(SERIES)  # restic read (and authenticated) all
    return r


def _restic_duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d{rest // 3600}h"


def _restic_kept(restic: Restic, policy: Policy) -> dict[str, list[str]]:
    """restic's keep list per host (restic groups by host and paths: one run, both series)."""
    args = []
    for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        n = getattr(policy, f"keep_{name}")
        if n:
            args += [f"--keep-{name}", str(n)]
    if policy.keep_within is not None:
        args += ["--keep-within", _restic_duration(policy.keep_within)]
    groups = json.loads(restic.run("--no-lock", "forget", "--dry-run", "--json", *args))
    return {
        g["host"]: sorted(
            datetime.fromisoformat(s["time"]).astimezone(UTC).isoformat() for s in g["keep"] or []
        )
        for g in groups
    }


def _drkit_kept(times: list[datetime], policy: Policy) -> list[str]:
    snaps = [
        Snapshot(
            id=f"{i:064x}",
            time=t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            component="c",
            source="/x",
            kind="files",
            host="h",
            user="u",
            tree="0" * 64,
        )
        for i, t in enumerate(times)
    ]
    kept = [d.snapshot.datetime for d in apply_policy(snaps, policy) if d.keep]
    return sorted(t.astimezone(UTC).isoformat() for t in kept)


def vars_of(policy: Policy) -> dict[str, object]:
    return {name: getattr(policy, name) for name in Policy.__slots__}


POLICIES = [
    Policy(keep_last=3),
    Policy(keep_hourly=2),
    Policy(keep_hourly=6),
    Policy(keep_daily=3),
    Policy(keep_daily=5),
    Policy(keep_weekly=2),
    Policy(keep_weekly=4),
    Policy(keep_monthly=2),
    Policy(keep_monthly=4),
    Policy(keep_yearly=3),
    Policy(keep_yearly=5),
    Policy(keep_last=1, keep_daily=2),
    Policy(keep_daily=3, keep_weekly=3, keep_monthly=2, keep_yearly=2),
    Policy(keep_within=86400),
    Policy(keep_within=3 * 86400 + 5 * 3600),
    Policy(keep_within=20 * 86400, keep_monthly=3),
    Policy(keep_hourly=100, keep_weekly=100),  # more than there are: every bucket's newest
]


@pytest.mark.parametrize(
    "policy",
    POLICIES,
    ids=lambda p: ",".join(
        f"{k.removeprefix('keep_')}={v}" for k, v in vars_of(p).items() if v not in (0, None, ())
    ),
)
def test_keep_rules_agree_with_restic(restic: Restic, policy: Policy) -> None:
    expected = _restic_kept(restic, policy)
    for host, times in HOSTS.items():
        assert expected[host], "restic kept nothing: the comparison would prove nothing"
        assert _drkit_kept(times, policy) == expected[host], host
