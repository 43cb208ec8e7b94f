"""drkit's keep-* rules against the real ``restic forget --dry-run`` on the same snapshot times.

restic's semantics are the reference (DESIGN.md: retention with restic's semantics), so
the expected answer is restic's own, not one computed by hand. restic is installed by the
test set-up (``scripts/system-deps.sh``); its absence fails the test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

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


@dataclass(frozen=True)
class Restic:
    env: dict[str, str]

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["restic", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def restic(tmp_path_factory: pytest.TempPathFactory) -> Restic:
    if shutil.which("restic") is None:
        pytest.fail("restic is not installed: run `make setup` (scripts/system-deps.sh)")
    base = tmp_path_factory.mktemp("restic")
    data = base / "data"
    data.mkdir()
    (data / "file").write_text("one snapshot per time\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base),
        "TZ": "UTC",  # restic buckets by the snapshot's own time, given here in UTC
        "RESTIC_REPOSITORY": str(base / "repo"),
        "RESTIC_PASSWORD": "retention reference",
        "RESTIC_CACHE_DIR": str(base / "cache"),
    }
    r = Restic(env)
    r.run("init", "-q")

    def backup(t: datetime) -> str:
        return r.run("backup", "-q", "--host", "h", "--time", f"{t:%Y-%m-%d %H:%M:%S}", str(data))

    with ThreadPoolExecutor(4) as pool:  # backups only take shared locks
        list(pool.map(backup, TIMES))
    return r


def _restic_duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d{rest // 3600}h"


def _restic_kept(restic: Restic, policy: Policy) -> list[str]:
    args = []
    for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        n = getattr(policy, f"keep_{name}")
        if n:
            args += [f"--keep-{name}", str(n)]
    if policy.keep_within is not None:
        args += ["--keep-within", _restic_duration(policy.keep_within)]
    (group,) = json.loads(restic.run("forget", "--dry-run", "--json", *args))
    times = [s["time"] for s in group["keep"] or []]
    return sorted(datetime.fromisoformat(t).astimezone(UTC).isoformat() for t in times)


def _drkit_kept(policy: Policy) -> list[str]:
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
        for i, t in enumerate(TIMES)
    ]
    kept = [d.snapshot.datetime for d in apply_policy(snaps, policy) if d.keep]
    return sorted(t.astimezone(UTC).isoformat() for t in kept)


def vars_of(policy: Policy) -> dict[str, object]:
    return {name: getattr(policy, name) for name in Policy.__slots__}


@pytest.mark.parametrize(
    "policy",
    [
        Policy(keep_last=3),
        Policy(keep_hourly=6),
        Policy(keep_daily=5),
        Policy(keep_weekly=4),
        Policy(keep_monthly=4),
        Policy(keep_yearly=3),
        Policy(keep_last=1, keep_daily=2),
        Policy(keep_daily=3, keep_weekly=3, keep_monthly=2, keep_yearly=2),
        Policy(keep_within=3 * 86400 + 5 * 3600),
        Policy(keep_within=20 * 86400, keep_monthly=3),
        Policy(keep_hourly=100, keep_weekly=100),  # more than there are: every bucket's newest
    ],
    ids=lambda p: ",".join(
        f"{k.removeprefix('keep_')}={v}" for k, v in vars_of(p).items() if v not in (0, None, ())
    ),
)
def test_keep_rules_agree_with_restic(restic: Restic, policy: Policy) -> None:
    expected = _restic_kept(restic, policy)
    assert expected, "restic kept nothing: the comparison would prove nothing"
    assert _drkit_kept(policy) == expected
