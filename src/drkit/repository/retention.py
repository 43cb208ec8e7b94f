"""Retention policy with restic's keep-* semantics, plus the verified-snapshot rule.

Per component, snapshots are sorted newest first. ``keep_last`` keeps the N newest;
``keep_hourly/daily/weekly/monthly/yearly`` keep the newest snapshot of each of the N
most recent periods *that have a snapshot* (UTC; weeks are ISO weeks); ``-1`` means
unlimited. ``keep_within`` keeps everything strictly within that many seconds of the
component's newest snapshot (as restic). ``keep_tags`` keeps snapshots carrying any of
those tags. drkit adds: the newest snapshot of a component that has a verification
record is always kept, and so is every snapshot in ``protected`` (the named versions of
versioned datasets: :func:`named_version`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from drkit.errors import InputError
from drkit.repository.snapshot import Snapshot

if TYPE_CHECKING:
    from drkit.plan.models import Retention


@dataclass(frozen=True, slots=True)
class Policy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: float | None = None
    keep_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
            n = getattr(self, f"keep_{rule}")
            if n < -1:
                raise InputError(
                    f"keep-{rule} {n}: expected a count >= 0, or -1 for all",
                    hint=f"e.g. --keep-{rule} 7, or --keep-{rule} -1 to keep every one",
                )
        if self.keep_within is not None and self.keep_within < 0:
            raise InputError(f"keep-within {self.keep_within}: a duration cannot be negative")

    @classmethod
    def from_plan(cls, ret: Retention) -> Policy:
        """The policy of a plan component's ``retention`` (unset counts are 0)."""
        return cls(
            keep_last=ret.keep_last or 0,
            keep_hourly=ret.keep_hourly or 0,
            keep_daily=ret.keep_daily or 0,
            keep_weekly=ret.keep_weekly or 0,
            keep_monthly=ret.keep_monthly or 0,
            keep_yearly=ret.keep_yearly or 0,
            keep_within=ret.keep_within,
        )

    def empty(self) -> bool:
        return (
            not any(
                (
                    self.keep_last,
                    self.keep_hourly,
                    self.keep_daily,
                    self.keep_weekly,
                    self.keep_monthly,
                    self.keep_yearly,
                    self.keep_tags,
                )
            )
            and self.keep_within is None
        )


@dataclass(slots=True)
class Decision:
    snapshot: Snapshot
    keep: bool
    reasons: list[str] = field(default_factory=list)


def _week(t: datetime) -> str:
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


_BUCKETS: list[tuple[str, Callable[[datetime], str]]] = [
    ("hourly", lambda t: t.strftime("%Y-%m-%d %H")),
    ("daily", lambda t: t.strftime("%Y-%m-%d")),
    ("weekly", _week),
    ("monthly", lambda t: t.strftime("%Y-%m")),
    ("yearly", lambda t: t.strftime("%Y")),
]


def named_version(snapshot: Snapshot) -> str | None:
    """The version label of a snapshot of a versioned dataset (``meta.version``), if any."""
    label = snapshot.meta.get("version")
    return str(label) if label not in (None, "") else None


def apply_policy(
    snapshots: Iterable[Snapshot],
    policy: Policy,
    verified: set[str] | None = None,
    protected: Collection[str] = (),
) -> list[Decision]:
    """Decide, per component, which snapshots to keep; returns decisions newest first.
    Snapshots in ``protected`` are always kept (reason ``version``)."""
    verified = verified or set()
    groups: dict[str, list[Snapshot]] = {}
    for s in snapshots:
        groups.setdefault(s.component, []).append(s)
    out: list[Decision] = []
    for _component, snaps in sorted(groups.items()):
        snaps.sort(key=lambda s: (s.time, s.id), reverse=True)
        decisions = [Decision(s, keep=policy.empty()) for s in snaps]
        if policy.empty():
            for d in decisions:
                d.reasons.append("no policy")
        counters = {
            "last": policy.keep_last,
            "hourly": policy.keep_hourly,
            "daily": policy.keep_daily,
            "weekly": policy.keep_weekly,
            "monthly": policy.keep_monthly,
            "yearly": policy.keep_yearly,
        }
        last_bucket: dict[str, str | None] = {name: None for name, _ in _BUCKETS}
        newest = snaps[0].datetime if snaps else None
        for d in decisions:
            t = d.snapshot.datetime
            if counters["last"] != 0:
                d.keep = True
                d.reasons.append("last")
                counters["last"] -= 1
            for name, fn in _BUCKETS:
                if counters[name] == 0:
                    continue
                bucket = fn(t)
                if bucket != last_bucket[name]:
                    d.keep = True
                    d.reasons.append(name)
                    last_bucket[name] = bucket
                    counters[name] -= 1
            if (
                policy.keep_within is not None
                and newest is not None
                and (newest - t).total_seconds() < policy.keep_within
            ):
                d.keep = True
                d.reasons.append("within")
            if set(policy.keep_tags) & set(d.snapshot.tags):
                d.keep = True
                d.reasons.append("tag")
        for d in decisions:
            if d.snapshot.id in protected:
                d.keep = True
                d.reasons.append("version")
        newest_verified = next((d for d in decisions if d.snapshot.id in verified), None)
        if newest_verified is not None:
            newest_verified.reasons.append("newest verified")
            newest_verified.keep = True
        _keep_chains(decisions)
        out.extend(decisions)
    return out


def _keep_chains(decisions: list[Decision]) -> None:
    """An incremental snapshot that cannot be restored without its parent (``meta.full``
    false: a harness's git bundle) keeps its parent, and so on (reason ``chain``)."""
    by_id = {d.snapshot.id: d for d in decisions}
    for d in decisions:  # newest first: a parent is decided after its child
        parent = d.snapshot.parent
        if d.keep and d.snapshot.meta.get("full") is False and parent in by_id:
            p = by_id[parent]
            if "chain" not in p.reasons:
                p.reasons.append("chain")
            p.keep = True
