"""forget: restic's keep-* semantics, table-driven; the verified rule; prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.repository.conftest import tree_state

from drkit.repository import Repository, backup_path, restore, snapshot_files
from drkit.repository.maintenance import check, forget, prune
from drkit.repository.retention import Policy, apply_policy
from drkit.repository.snapshot import Snapshot

BASE = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def _snap(i: int, t: datetime, component: str = "c", tags: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(
        id=f"{i:064x}",
        time=t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        component=component,
        source="/x",
        kind="files",
        host="h",
        user="u",
        tree="0" * 64,
        tags=tags,
    )


# one snapshot every 6 hours for 60 days: 240 snapshots, newest = index 239
SERIES = [_snap(i, BASE + timedelta(hours=6 * i)) for i in range(240)]


def _kept(policy: Policy, verified: set[str] | None = None) -> list[int]:
    decisions = apply_policy(SERIES, policy, verified)
    return sorted(int(d.snapshot.id, 16) for d in decisions if d.keep)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy(), list(range(240))),  # no policy: keep everything
        (Policy(keep_last=3), [237, 238, 239]),
        # daily: newest snapshot of each of the 3 newest days (4 per day, 18:00 is newest)
        # days run 00:00-24:00 UTC; 239 is Mar 1 06:00, 237 Feb 29 18:00, 233 Feb 28 18:00
        (Policy(keep_daily=3), [233, 237, 239]),
        (Policy(keep_hourly=2), [238, 239]),
        (Policy(keep_last=1, keep_daily=2), [237, 239]),
        # strictly within 1 day of the newest, as restic (Feb 29 06:00 itself is out)
        (Policy(keep_within=86400), [236, 237, 238, 239]),
        (Policy(keep_monthly=2), [237, 239]),  # March and February
        (Policy(keep_yearly=5), [239]),
        # ISO weeks: 239 in week 9; week 8 ends Sunday Feb 25 18:00 = 221
        (Policy(keep_weekly=2), [221, 239]),
        (Policy(keep_daily=-1), [*(4 * k + 1 for k in range(60)), 239]),
    ],
)
def test_keep_rules_match_restic(policy: Policy, expected: list[int]) -> None:
    assert _kept(policy) == expected


def test_periods_without_snapshots_do_not_count() -> None:
    # snapshots on day 0, day 10 and day 20 only: keep-daily 2 keeps days 20 and 10
    snaps = [_snap(i, BASE + timedelta(days=10 * i)) for i in range(3)]
    kept = [d.snapshot.id for d in apply_policy(snaps, Policy(keep_daily=2)) if d.keep]
    assert kept == [snaps[2].id, snaps[1].id]


def test_newest_verified_snapshot_is_never_forgotten() -> None:
    verified = {SERIES[100].id, SERIES[50].id}
    assert _kept(Policy(keep_last=2), verified) == [100, 238, 239]


def test_policy_is_per_component() -> None:
    a = [_snap(i, BASE + timedelta(hours=i), "a") for i in range(5)]
    b = [_snap(100 + i, BASE + timedelta(hours=i), "b") for i in range(5)]
    kept = {d.snapshot.id for d in apply_policy(a + b, Policy(keep_last=1)) if d.keep}
    assert kept == {a[-1].id, b[-1].id}


def test_forget_and_prune_keep_what_is_referenced(
    repo: Repository, sample_tree: Path, tmp_path: Path
) -> None:
    s1 = backup_path(repo, sample_tree, component="data")
    repo.mark_verified(s1.id, {"ok": True})
    (sample_tree / "emb.f32").write_bytes(b"replaced" * 1000)
    s2 = backup_path(repo, sample_tree, component="data")
    (sample_tree / "sub" / "note-0.txt").write_text("changed\n")
    s3 = backup_path(repo, sample_tree, component="data")
    other = snapshot_files(repo, "state", {"s.json": b"{}"})
    dry = forget(repo, Policy(keep_last=1), dry_run=True)
    assert sorted(dry.removed) == [s2.id]
    assert {s.id for s in repo.snapshots()} == {s1.id, s2.id, s3.id, other.id}
    done = forget(repo, Policy(keep_last=1))
    assert done.removed == [s2.id]
    before = sum(i.size for i in repo.store.list("data/"))
    result = prune(repo)
    after = sum(i.size for i in repo.store.list("data/"))
    assert result.blobs_removed >= 1
    assert after <= before
    assert check(repo, read_data=True).ok
    for s in (s1, s3):
        restore(repo, s.id, tmp_path / f"r-{s.short_id}")
    assert tree_state(tmp_path / f"r-{s3.short_id}") == tree_state(sample_tree)
    # forgetting everything but the newest and pruning removes the old verification
    forget(repo, Policy(keep_last=1), components=["data"])
    assert {s.id for s in repo.snapshots("data")} == {s1.id, s3.id}  # s1 is verified
