"""What the plan's ``testing`` cadence reads: when each activity last succeeded or failed.

An activity is a kind of exercise (``failover_drill``, ``regional_failover``,
``restore_test``, ``gameday``); its successes and failures are drills, game days and
restore tests recorded in drkit's state.
"""

from __future__ import annotations

from datetime import UTC, datetime

from drkit.drills.scenarios import SCENARIOS
from drkit.state.store import DrillRecord, StateStore, Verification

#: Which scenarios count as which activity of the plan's ``testing`` cadence.
ACTIVITY_SCENARIOS: dict[str, tuple[str, ...]] = {
    name: tuple(s.name for s in SCENARIOS.values() if s.cadence == name)
    for name in ("failover_drill", "regional_failover", "restore_test")
}

#: drill verdicts that are failures (``interrupted``: stopped by the user, no verdict)
_FAILED = ("fail", "aborted", "error")


def last_success(state: StateStore, activity: str, subject: str | None = None) -> datetime | None:
    """When ``activity`` last succeeded: a passing drill, a passing game day (every
    drill passed), a restore test of which every check was ok. Failed, aborted and
    interrupted attempts never count."""
    times: list[float] = []
    if activity == "restore_test":
        times += _passing_runs(state.verifications(subject))
    if activity == "gameday":
        times += [
            e.at for e in state.events(kind="gameday.completed") if e.data.get("passed") is True
        ]
    if activity != "restore_test":  # drills' restores are recorded per component
        for name in ACTIVITY_SCENARIOS.get(activity, ()):
            times += [
                d.at for d in state.drills(name) if d.verdict == "pass" and _counts(activity, d)
            ]
    return datetime.fromtimestamp(max(times), UTC) if times else None


def last_failure(state: StateStore, activity: str, subject: str | None = None) -> datetime | None:
    """When ``activity`` last failed (a failed, aborted or errored drill or game day,
    a restore test with a failed check); interrupted drills are not failures."""
    times: list[float] = []
    if activity == "restore_test":
        times += _failed_runs(state.verifications(subject))
    if activity == "gameday":
        times += [
            e.at for e in state.events(kind="gameday.completed") if e.data.get("passed") is not True
        ]
    if activity != "restore_test":
        for name in ACTIVITY_SCENARIOS.get(activity, ()):
            times += [
                d.at for d in state.drills(name) if d.verdict in _FAILED and _counts(activity, d)
            ]
    return datetime.fromtimestamp(max(times), UTC) if times else None


def _counts(activity: str, drill: DrillRecord) -> bool:
    """The regional failover exercise is real traffic on the other region: only a live
    region-outage that drained the whole region (``--live GATEWAY_URL``, every route with
    a target there, all of their traffic: journal metric ``region_drained``) is one."""
    if activity != "regional_failover":
        return True
    metrics = drill.journal.get("metrics") or {}
    return bool(metrics.get("live")) and bool(metrics.get("region_drained"))


def _runs(verifications: list[Verification]) -> list[list[Verification]]:
    """Restore checks grouped by run (one ``verify`` of a component, all its collections;
    one drill); records without a run are runs of their own."""
    runs: dict[tuple[str, str], list[Verification]] = {}
    for i, v in enumerate(verifications):
        run = v.details.get("run") or v.details.get("by") or f"#{i}"
        runs.setdefault((v.component, str(run)), []).append(v)
    return list(runs.values())


def _passing_runs(verifications: list[Verification]) -> list[float]:
    """When restore tests passed: a run passes only when every one of its checks was ok."""
    return [max(v.at for v in vs) for vs in _runs(verifications) if all(v.ok for v in vs)]


def _failed_runs(verifications: list[Verification]) -> list[float]:
    return [max(v.at for v in vs) for vs in _runs(verifications) if not all(v.ok for v in vs)]
