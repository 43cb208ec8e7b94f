"""``drkit plan check``'s state-fed rules: drills and restore tests overdue by the cadence.

Why here and not in ``drkit.plan.rules``: the plan layer cannot read drkit's state (it
is a lower layer), and these rules only make sense where the state is known. They are
:class:`~drkit.plan.lint.Rule` objects evaluated against a
:class:`~drkit.plan.lint.LintContext` whose ``last_success`` reads the state store, but
they are *not* put in the global registry: a bare ``lint(plan)`` stays pure, and the
plan layer's own tests of state-fed rules see only their own.

A drill that never ran is a warning (a fresh plan is not in violation on day one); a
drill or restore test whose last success is older than its cadence is an error, and so
is one whose newest attempt failed: a failed game day, drill or restore test never
counts as one that passed, and a failure after the last success is not hidden by it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from drkit.plan.lint import Finding, LintContext, Rule, Severity, Violation, locate
from drkit.plan.models import Plan
from drkit.types import format_duration

#: (activity, testing field, what it is, how to run it)
_CADENCES = (
    ("failover_drill", "failover_drill_every", "failover drill", "drkit drill run provider-outage"),
    (
        "regional_failover",
        "regional_failover_every",
        "regional failover drill",
        "drkit drill run region-outage --live GATEWAY_URL --duration 1h",
    ),
    ("gameday", "gameday_every", "game day", "drkit gameday"),
)


@dataclass(frozen=True)
class StateContext(LintContext):
    """A lint context that also knows failures: ``last_failure(activity, subject)`` is when
    the newest failed attempt was (``None``: none)."""

    last_failure: Callable[[str, str | None], datetime | None] | None = None


def _age(ctx: LintContext, last: datetime) -> float:
    return (ctx.now - last).total_seconds()


def _failed_since(
    ctx: LintContext, activity: str, subject: str | None, last: datetime | None
) -> datetime | None:
    """When the newest attempt failed, if it is newer than the last success."""
    failure = getattr(ctx, "last_failure", None)
    failed = failure(activity, subject) if failure is not None else None
    return failed if failed is not None and (last is None or failed > last) else None


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M}Z"


def _cadence_findings(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    assert ctx.last_success is not None
    for activity, field, what, command in _CADENCES:
        every = getattr(plan.testing, field)
        if every is None:
            continue
        last = ctx.last_success(activity, None)
        where = ("testing", field)
        failed = _failed_since(ctx, activity, None, last)
        if last is not None and _age(ctx, last) > every:
            ago = format_duration(round(_age(ctx, last)))
            message = (
                f"{what} overdue: the last passing one was {ago} ago, "
                f"the cadence is every {format_duration(every)}"
            )
        elif failed is not None:
            message = f"the last {what} failed ({_when(failed)})"
            message += "" if last else "; none has passed yet"
        elif last is None:
            yield Finding(
                where, f"no passing {what} recorded yet", f"run `{command}`", Severity.WARNING
            )
            continue
        else:
            continue
        if failed is not None and "failed" not in message:
            message += f"; the last one failed ({_when(failed)})"
        yield Finding(where, message, f"fix what it found, then run `{command}`")


def _restore_findings(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    assert ctx.last_success is not None
    every = plan.testing.restore_test_every
    if every is None:
        return
    for path, comp in plan.components():
        if comp.kind == "model" and not getattr(comp, "path", None):
            continue  # nothing drkit keeps, nothing to restore
        last = ctx.last_success("restore_test", comp.name)
        failed = _failed_since(ctx, "restore_test", comp.name, last)
        broken = (
            f"; the last restore test failed ({_when(failed)}): its backups are not known "
            "to restore"
            if failed is not None
            else ""
        )
        if last is not None and _age(ctx, last) > every:
            yield Finding(
                path,
                f"{comp.name}: restore test overdue: the last good one was "
                f"{format_duration(round(_age(ctx, last)))} ago, the cadence is every "
                f"{format_duration(every)}" + broken,
                f"restore-test it: `drkit verify {comp.name}`",
            )
        elif failed is not None:
            yield Finding(
                path,
                f"{comp.name}{broken.replace(';', ':', 1)}",
                f"see `drkit verify {comp.name}`, fix the cause, then restore-test it again",
            )
        elif last is None:
            hint = (
                f"back it up, then restore-test it: `drkit backup {comp.name}` and "
                f"`drkit verify {comp.name}` (or `drkit gameday`, which runs data-corruption)"
            )
            message = f"{comp.name}: no successful restore test recorded yet"
            yield Finding(path, message, hint, Severity.WARNING)


OVERDUE_RULES: tuple[Rule, ...] = (
    Rule(
        "DR591",
        "drill-overdue",
        Severity.ERROR,
        "the last passing failover drill, regional failover and game day are within their cadence",
        "Quarterly: failover drills. Annual: full regional failover exercise. Game days.",
        _cadence_findings,
        needs=("last_success",),
    ),
    Rule(
        "DR592",
        "restore-test-overdue",
        Severity.ERROR,
        "every component's last successful restore test is within restore_test_every",
        "Test restoration periodically. Backups that don't restore are worse than no backups.",
        _restore_findings,
        needs=("last_success",),
    ),
)


def overdue_violations(plan: Plan, ctx: LintContext) -> list[Violation]:
    """The findings of :data:`OVERDUE_RULES`, located in the plan file like lint's."""
    return [
        locate(plan, rule, finding) for rule in OVERDUE_RULES for finding in rule.check(plan, ctx)
    ]


#: What a replica lacks: (component, age in seconds) of each primary snapshot older than
#: the replica's ``copy_every`` that is not on it; a string: why it could not be checked.
ReplicaGap = list[tuple[str, float]] | str


def _no_check(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    return iter(())


REPLICA_RULE = Rule(
    "DR593",
    "replica-copy-overdue",
    Severity.ERROR,
    "every snapshot older than a replica's copy_every is on that replica",
    "Replication lag determines actual RPO.",
    _no_check,  # evaluated by replica_findings with what the repositories hold
)


def replica_findings(plan: Plan, gaps: dict[str, ReplicaGap]) -> list[Violation]:
    """DR593 for each replica of ``gaps`` (by name): behind its copy cadence, or not
    checkable (a warning: never a silent pass)."""
    out = []
    for i, rep in enumerate(plan.repositories.replicas):
        gap = gaps.get(rep.name)
        if gap is None or gap == []:
            continue
        where: tuple[str | int, ...] = ("repositories", "replicas", i)
        if isinstance(gap, str):
            finding = Finding(
                where,
                f"replica {rep.name!r}: whether it is within copy_every could not be "
                f"checked: {gap}",
                "check its URL and password, then `drkit copy --to " + rep.name + "`",
                Severity.WARNING,
            )
        else:
            component, age = max(gap, key=lambda g: g[1])
            finding = Finding(
                (*where, "copy_every"),
                f"replica {rep.name!r} is behind: {len(gap)} snapshot(s) older than its "
                f"copy_every ({format_duration(rep.copy_every)}) are not on it, the oldest "
                f"of {component!r} from {format_duration(round(age))} ago",
                f"`drkit copy --to {rep.name}`, every {format_duration(rep.copy_every)}",
            )
        out.append(locate(plan, REPLICA_RULE, finding))
    return out
