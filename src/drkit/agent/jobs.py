"""The plan's cadence as agent jobs, and what each job calls.

One job per thing the plan says must happen regularly:

- ``backup:<component>``: every component drkit backs up that has a ``schedule``;
- ``copy:<replica>``: every replica some component replicates to, every ``copy_every``;
- ``restore-test:<component>``: every ``testing.restore_test_every`` (after its backup);
- ``retention``: forget by each component's ``retention``, then prune, every
  :data:`RETENTION_EVERY` (after the backups);
- ``state-backup``: drkit's own state snapshotted into the primary repository (see
  :mod:`drkit.agent.state_backup`), every :func:`state_backup_every`; copies carry it,
  retention keeps :data:`~drkit.agent.state_backup.STATE_KEEP` of those snapshots;
- ``standby:<vector store>``: one sync pass of its warm standby, every ``standby.interval``;
- ``drill:<scenario>[:<subject>]``: each ``testing.automated_drills`` entry, alone;
- ``eval:<route>:<eval set>``: each ``testing.scheduled_evals`` entry: the eval set through
  the route of the plan's gateway, stored in eval history; it fails when the run does not
  pass its floor or regresses against the last passing run (docs/evals.md#scheduled-evals).

To add a job kind (e.g. a standby sync): write a ``_kind(plan_path, ...) -> Callable[[],
str]`` factory below and append a :class:`Job` in :func:`plan_jobs`; the scheduler,
history, retries, /metrics and ``agent status`` need nothing else.

A job's function raises on failure (a :class:`~drkit.errors.DrkitError`; only
``retryable`` ones are retried) and returns a one-line summary on success. Jobs open
their repositories themselves, so that two jobs never share a repository object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drkit.errors import CheckFailed, NothingToBackUp, UsageError
from drkit.plan.models import Plan
from drkit.plan.schedule import CronSchedule, IntervalSchedule
from drkit.types import format_duration
from drkit.workspace.access import repository_at, repository_credentials

#: How often retention (forget + prune) runs: the plan gives no cadence for it.
RETENTION_EVERY = 86400.0
#: Bounds of the state backup's cadence (it follows the shortest backup interval).
STATE_BACKUP_BOUNDS = (60.0, 3600.0)
#: The shortest interval the agent schedules (a tighter one is a typo, or a busy loop).
MIN_INTERVAL = 1.0

JobKind = (
    str  # "backup" | "copy" | "restore-test" | "retention" | "state-backup" | "drill" | "eval"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job's function may return instead of its one-line summary: the summary
    and the bytes the run stored or moved (``drkit_agent_job_last_bytes``)."""

    summary: str
    bytes: int


@dataclass(frozen=True)
class Job:
    """One recurring task: an id, its cadence, and the function that does it."""

    id: str
    kind: JobKind
    schedule: IntervalSchedule | CronSchedule
    run: Callable[[], str | Outcome]
    #: jobs that must have succeeded once (and not be running) before this one starts
    after: tuple[str, ...] = ()
    #: runs alone: no other job of the agent runs meanwhile (prune's exclusive lock)
    exclusive: bool = False
    #: the plan field that sets the cadence, for messages
    origin: str = ""


def _interval(seconds: float) -> IntervalSchedule:
    return IntervalSchedule(every=seconds)


def _check_minimum(plan: Plan, schedule: IntervalSchedule | CronSchedule, where: str) -> None:
    if isinstance(schedule, IntervalSchedule) and schedule.every < MIN_INTERVAL:
        raise UsageError(
            f"{where}: {format_duration(schedule.every)} is below the agent's minimum "
            f"interval of {format_duration(MIN_INTERVAL)}",
            hint=f"schedule it every {format_duration(MIN_INTERVAL)} or more",
        )


def _where(plan: Plan, *path: str | int) -> str:
    loc = plan.locate(*path)
    return (f"{loc.file}:{loc.line} " if loc.file and loc.line else "") + loc.field


def plan_jobs(plan: Plan, plan_path: Path) -> list[Job]:
    """The jobs of ``plan``'s cadence (``UsageError`` naming the field: a schedule below
    :data:`MIN_INTERVAL`; nothing to schedule at all)."""
    from drkit.agent.state_backup import STATE_COMPONENT
    from drkit.workspace.protect import _backupable

    jobs: list[Job] = []
    backups: dict[str, str] = {}
    for path, comp in plan.components():
        if comp.schedule is None or not _backupable(comp):
            continue
        where = _where(plan, *path, "schedule")
        _check_minimum(plan, comp.schedule, where)
        jid = f"backup:{comp.name}"
        backups[comp.name] = jid
        jobs.append(Job(jid, "backup", comp.schedule, _backup(plan_path, comp.name), origin=where))
    for i, rep in enumerate(plan.repositories.replicas):
        names = [c.name for _, c in plan.components() if rep.name in c.replicate_to]
        if not names:
            continue
        where = _where(plan, "repositories", "replicas", i, "copy_every")
        sched = _interval(rep.copy_every)
        _check_minimum(plan, sched, where)
        after = (*(backups[n] for n in names if n in backups), STATE_JOB)
        jobs.append(
            Job(
                f"copy:{rep.name}",
                "copy",
                sched,
                _copy(plan_path, rep.name, [*names, STATE_COMPONENT]),
                after,
                origin=where,
            )
        )
    every = plan.testing.restore_test_every
    if every is not None:
        where = _where(plan, "testing", "restore_test_every")
        _check_minimum(plan, _interval(every), where)
        for name, jid in backups.items():
            jobs.append(
                Job(
                    f"restore-test:{name}",
                    "restore-test",
                    _interval(every),
                    _restore_test(plan_path, name),
                    (jid,),
                    origin=where,
                )
            )
    kept = [c.name for _, c in plan.components() if c.retention is not None]
    if kept:
        jobs.append(
            Job(
                "retention",
                "retention",
                _interval(RETENTION_EVERY),
                _retention(plan_path),
                tuple(backups[n] for n in kept if n in backups),
                exclusive=True,
                origin="retention",
            )
        )
    jobs += _drill_jobs(plan, plan_path)
    jobs += _eval_jobs(plan, plan_path)
    from drkit.agent.standby import standby_jobs  # warm standbys, every standby.interval

    jobs += standby_jobs(plan, plan_path)
    if not jobs:
        raise UsageError(
            f"plan {plan.name!r} schedules nothing: no component has a schedule",
            hint="give components a `schedule:` (e.g. 1h or '0 * * * *') in the plan",
        )
    every = state_backup_every(plan)
    jobs.append(
        Job(STATE_JOB, "state-backup", _interval(every), _state_backup(plan_path), origin="state")
    )
    return jobs


STATE_JOB = "state-backup"


def _drill_jobs(plan: Plan, plan_path: Path) -> list[Job]:
    """``drill:<scenario>[:<subject>]`` per ``testing.automated_drills`` entry, alone (a
    drill holds the stack); a drill whose verdict is not ``pass`` is a failed run."""
    jobs: list[Job] = []
    if not plan.testing.automated_drills:
        return jobs
    from drkit.drills.scenarios import SCENARIOS  # only then: the scenarios import a lot

    for i, drill in enumerate(plan.testing.automated_drills):
        where = _where(plan, "testing", "automated_drills", i, "scenario")
        if drill.scenario not in SCENARIOS:
            raise UsageError(
                f"{where}: unknown scenario {drill.scenario!r}",
                hint="one of: " + ", ".join(SCENARIOS) + " (`drkit drill list`)",
            )
        jid = f"drill:{drill.scenario}" + (f":{drill.subject}" if drill.subject else "")
        if any(j.id == jid for j in jobs):
            raise UsageError(f"{where}: {jid} is listed twice", hint="keep one entry")
        sched = _interval(drill.every)
        _check_minimum(plan, sched, _where(plan, "testing", "automated_drills", i, "every"))
        jobs.append(
            Job(
                jid,
                "drill",
                sched,
                _drill(plan_path, drill.scenario, drill.subject),
                exclusive=True,
                origin=where,
            )
        )
    return jobs


def _eval_jobs(plan: Plan, plan_path: Path) -> list[Job]:
    """``eval:<route>:<eval set>`` per ``testing.scheduled_evals`` entry; the eval set is
    loaded (validated) now, so a missing or malformed one is exit 2 when the agent starts."""
    jobs: list[Job] = []
    if not plan.testing.scheduled_evals:
        return jobs
    from drkit.evals.evalset import load_eval_set

    for i, scheduled in enumerate(plan.testing.scheduled_evals):
        where = _where(plan, "testing", "scheduled_evals", i, "eval_set")
        path = plan.resolve_path(scheduled.eval_set)
        if not path.is_file():
            raise UsageError(
                f"{where}: no eval set file at {path}",
                hint="a JSONL eval set (docs/evals.md), relative to the plan",
            )
        name = load_eval_set(path).name
        jid = f"eval:{scheduled.route}:{name}"
        if any(j.id == jid for j in jobs):
            raise UsageError(f"{where}: {jid} is listed twice", hint="keep one entry")
        sched = _interval(scheduled.every)
        _check_minimum(plan, sched, _where(plan, "testing", "scheduled_evals", i, "every"))
        jobs.append(
            Job(
                jid,
                "eval",
                sched,
                _scheduled_eval(plan_path, (scheduled.route, scheduled.eval_set)),
                origin=where,
            )
        )
    return jobs


def state_backup_every(plan: Plan) -> float:
    """The shortest interval among the plan's backup schedules (a cron one counts as
    an hour), within :data:`STATE_BACKUP_BOUNDS`."""
    low, high = STATE_BACKUP_BOUNDS
    intervals = [
        c.schedule.every if isinstance(c.schedule, IntervalSchedule) else high
        for _, c in plan.components()
        if c.schedule is not None
    ]
    return max(low, min([high, *intervals]))


# --- what each job does ------------------------------------------------------------------


def _backup(plan_path: Path, component: str) -> Callable[[], str | Outcome]:
    def run() -> str | Outcome:
        from drkit.plan.loader import load_plan
        from drkit.workspace.access import opened_repository
        from drkit.workspace.openlineage_out import openlineage_out
        from drkit.workspace.protect import backup_each, backup_jobs

        plan = load_plan(plan_path)
        with opened_repository(None, plan_path) as repo:
            jobs, _ = backup_jobs(plan, [component], repo=repo)
            results = backup_each(repo, jobs, lineage=openlineage_out(plan))
        for r in results:
            if r.error is not None:
                raise r.error
            if r.status == "nothing" and not r.nothing_expected:
                raise NothingToBackUp(f"{component}: {r.message}")
        snaps = [i.snapshot.short_id for r in results for i in r.items]
        stored = sum(
            int(i.snapshot.summary.get("new_bytes_stored", 0)) for r in results for i in r.items
        )
        return Outcome(f"{len(snaps)} snapshot(s): {', '.join(snaps) or 'none (expected)'}", stored)

    return run


def _copy(plan_path: Path, replica: str, components: list[str]) -> Callable[[], str | Outcome]:
    def run() -> str | Outcome:
        from drkit.repository.replica import copy
        from drkit.workspace.access import opened_repository

        url, password = repository_credentials(replica, plan_path, "TO")
        with (
            opened_repository(None, plan_path) as src,
            repository_at(url, password, init=True) as dst,
        ):
            ids = [s.id for s in src.snapshots() if s.component in components]
            res = copy(src, dst, snapshot_ids=ids)
        from drkit.workspace.costing import record_copy_at

        record_copy_at(plan_path, replica, res)
        return Outcome(
            f"{len(res.snapshots_copied)} snapshot(s) copied to {replica}, "
            f"{res.snapshots_present} already there",
            res.stored_bytes,
        )

    return run


def _restore_test(plan_path: Path, component: str) -> Callable[[], str]:
    def run() -> str:
        from drkit.workspace.workspace import Workspace

        with Workspace.load(plan_path) as ws:
            checks = ws.restore_test(component)
        bad = [c for c in checks if not c.ok]
        if bad:
            raise CheckFailed(
                f"restore test of {bad[0].label} failed: "
                + "; ".join(bad[0].problems or ("not verified",))
            )
        return ", ".join(f"{c.label} verified in {c.duration_s:.2f}s" for c in checks)

    return run


def _drill(plan_path: Path, scenario: str, subject: str | None) -> Callable[[], str]:
    def run() -> str:
        from drkit.drills.scenarios import DrillOptions
        from drkit.workspace.workspace import Workspace

        with Workspace.load(plan_path) as ws:
            journal, path = ws.run_drill(scenario, DrillOptions(subject=subject))
        if journal.verdict != "pass":
            reasons = "; ".join(journal.reasons) or journal.verdict
            raise CheckFailed(f"drill {scenario}: {journal.verdict}: {reasons} (journal {path})")
        return f"drill {scenario} passed (journal {path})"

    return run


def _scheduled_eval(plan_path: Path, key: tuple[str, str]) -> Callable[[], str]:
    """Run the scheduled eval ``key`` (route, eval_set) of the plan as it is now."""

    def run() -> str:
        from drkit.workspace.eval_history import eval_place
        from drkit.workspace.eval_run import EvalRequest, gateway_client_key, regression, run_eval

        place = eval_place(plan_path)
        plan = place.plan
        found = [
            s
            for s in (plan.testing.scheduled_evals if plan is not None else [])
            if (s.route, s.eval_set) == key
        ]
        if plan is None or not found:
            raise UsageError(f"{plan_path}: testing.scheduled_evals no longer has {key}")
        scheduled = found[0]
        request = EvalRequest(
            plan.resolve_path(scheduled.eval_set),
            gateway=place.gateway_url(),
            route=scheduled.route,
            api_key=gateway_client_key(plan, scheduled.api_key_env),
            concurrency=scheduled.concurrency,
        )
        outcome = run_eval(place, request)
        run, show = outcome.summary, f"`drkit eval show {outcome.summary.run_id}`"
        failure = outcome.failure()
        if failure is not None:
            raise CheckFailed(f"run {run.run_id} through {scheduled.route}: {failure}", hint=show)
        floor = (
            f"floor {run.pass_threshold:.3f}"
            if run.pass_threshold is not None
            else "no quality floor"
        )
        done = f"run {run.run_id}: mean score {run.mean_score:.3f} over {run.n} ({floor})"
        gate = regression(place, run)
        if gate is None:
            return done + ", no earlier passing run to compare with"
        base, c = gate
        against = (
            f"{c.candidate_mean:.3f} vs {c.baseline_mean:.3f} of {base.run_id} "
            f"(effect {c.effect:+.3f}, {c.test} p={c.p_value:.4g})"
        )
        if c.regressed:
            raise CheckFailed(
                f"run {run.run_id} through {scheduled.route} regressed: {against}",
                hint=f"`drkit eval compare {base.run_id} {run.run_id}`",
            )
        return f"{done}, {c.verdict} against the last passing run: {against}"

    return run


def _state_backup(plan_path: Path) -> Callable[[], str]:
    def run() -> str:
        from drkit.agent.state_backup import snapshot_state
        from drkit.plan.loader import load_plan
        from drkit.state.store import plan_state_location
        from drkit.workspace.access import opened_repository

        with opened_repository(None, plan_path) as repo:
            done = snapshot_state(repo, plan_state_location(load_plan(plan_path)))
        return f"state snapshot {done.snapshot.short_id} ({done.events} event(s))"

    return run


def _retention(plan_path: Path) -> Callable[[], str]:
    def run() -> str:
        from drkit.agent.state_backup import prune_state_snapshots
        from drkit.plan.loader import load_plan
        from drkit.repository.maintenance import forget, prune
        from drkit.repository.retention import Policy
        from drkit.workspace.access import opened_repository
        from drkit.workspace.rollback_closure import lineage_protected

        plan = load_plan(plan_path)
        removed = 0
        with opened_repository(None, plan_path) as repo:
            kept = lineage_protected(plan_path, repo)  # what a model rollback needs
            have = {s.component for s in repo.snapshots()}
            for _, comp in plan.components():
                ret = comp.retention
                if ret is None or comp.name not in have:
                    continue
                policy = Policy.from_plan(ret)
                removed += len(forget(repo, policy, components=[comp.name], protected=kept).removed)
            removed += prune_state_snapshots(repo)
            pruned = prune(repo)
        return f"{removed} snapshot(s) forgotten, {pruned.packs_deleted} pack(s) deleted"

    return run
