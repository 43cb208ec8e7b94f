"""``drkit plan check``'s state-fed rules: drills and restore tests overdue by the cadence.

Why here and not in ``drkit.plan.rules``: the plan layer cannot read drkit's state (it
is a lower layer), and these rules only make sense where the state is known. They are
:class:`~drkit.plan.lint.Rule` objects evaluated against a
:class:`~drkit.plan.lint.LintContext` whose ``last_success`` reads the state store, but
they are *not* put in the global registry: a bare ``lint(plan)`` stays pure, and the
plan layer's own tests of state-fed rules see only their own.

A drill that never ran is a warning (a fresh plan is not in violation on day one); a
drill or restore test whose last success is older than its cadence is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
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
        "drkit drill run region-outage",
    ),
    ("gameday", "gameday_every", "game day", "drkit gameday"),
)


def _age(ctx: LintContext, last: datetime) -> float:
    return (ctx.now - last).total_seconds()


def _cadence_findings(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    assert ctx.last_success is not None
    for activity, field, what, command in _CADENCES:
        every = getattr(plan.testing, field)
        if every is None:
            continue
        last = ctx.last_success(activity, None)
        where = ("testing", field)
        if last is None:
            yield Finding(
                where, f"no passing {what} recorded yet", f"run `{command}`", Severity.WARNING
            )
        elif _age(ctx, last) > every:
            ago = format_duration(round(_age(ctx, last)))
            yield Finding(
                where,
                f"{what} overdue: the last passing one was {ago} ago, "
                f"the cadence is every {format_duration(every)}",
                f"run `{command}`",
            )


def _restore_findings(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    assert ctx.last_success is not None
    every = plan.testing.restore_test_every
    if every is None:
        return
    for path, comp in plan.components():
        if comp.kind == "model" and not getattr(comp, "path", None):
            continue  # nothing drkit keeps, nothing to restore
        last = ctx.last_success("restore_test", comp.name)
        if last is None:
            hint = (
                f"back it up, then restore-test it: `drkit backup {comp.name}` and "
                f"`drkit verify {comp.name}` (or `drkit gameday`, which runs data-corruption)"
            )
            message = f"{comp.name}: no successful restore test recorded yet"
            yield Finding(path, message, hint, Severity.WARNING)
        elif _age(ctx, last) > every:
            yield Finding(
                path,
                f"{comp.name}: restore test overdue: the last good one was "
                f"{format_duration(round(_age(ctx, last)))} ago, the cadence is every "
                f"{format_duration(every)}",
                "run a restore test of it",
            )


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
