"""DR testing cadence: restore tests, failover drills, regional failover, game days."""

from __future__ import annotations

from collections.abc import Iterator

from drkit.plan.lint import Finding, LintContext, Severity, rule
from drkit.plan.models import Plan
from drkit.types import format_duration

DAY = 86400.0
#: "at least quarterly" / "yearly" with a little slack for calendar months and leap years
QUARTER = 92 * DAY
YEAR = 366 * DAY
RESTORE_TEST_MAX = 90 * DAY


@rule(
    "DR501",
    "restore-test-cadence",
    Severity.ERROR,
    "restore tests have a cadence (at most every 90 days)",
    "Test restoration periodically. Backups that don't restore are worse than no backups.",
)
def restore_test_cadence(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    every = plan.testing.restore_test_every
    if every is None:
        yield Finding(
            ("testing",),
            "no restore-test cadence: backups that are never restored are not known to work",
            "add `testing: {restore_test_every: 30d}`",
        )
    elif every > RESTORE_TEST_MAX:
        yield Finding(
            ("testing", "restore_test_every"),
            f"restore tests every {format_duration(every)}; test at least every 90d",
            "set `restore_test_every: 30d`",
            Severity.WARNING,
        )


@rule(
    "DR502",
    "failover-drill-quarterly",
    Severity.ERROR,
    "failover drills run at least quarterly",
    "Quarterly: failover drills in staging + subset of production. Validate automation "
    "works; surface issues.",
)
def failover_drill_quarterly(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    every = plan.testing.failover_drill_every
    if every is None:
        yield Finding(
            ("testing",),
            "no failover-drill cadence; the framework asks for quarterly drills",
            "add `failover_drill_every: 90d` under testing:",
        )
    elif every > QUARTER:
        yield Finding(
            ("testing", "failover_drill_every"),
            f"failover drills every {format_duration(every)}; needs at least quarterly (90d)",
            "set `failover_drill_every: 90d` or less",
        )


@rule(
    "DR503",
    "regional-failover-yearly",
    Severity.ERROR,
    "a full regional failover exercise runs at least yearly (when a tier is multi-region)",
    "Annual: full regional failover exercise. Real traffic to secondary region for a "
    "period. Validates DR readiness comprehensively.",
)
def regional_failover_yearly(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    if not any(t.multi_region for t in plan.tiers.values()):
        return
    every = plan.testing.regional_failover_every
    if every is None:
        yield Finding(
            ("testing",),
            "no regional-failover cadence although a tier is multi-region",
            "add `regional_failover_every: 365d` under testing:",
        )
    elif every > YEAR:
        yield Finding(
            ("testing", "regional_failover_every"),
            f"regional failover every {format_duration(every)}; needs at least yearly",
            "set `regional_failover_every: 365d` or less",
        )


@rule(
    "DR504",
    "gameday-cadence",
    Severity.INFO,
    "game days have a cadence",
    "Game days. Team practices incident response for disaster scenarios. Builds muscle memory.",
)
def gameday_cadence(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    if plan.testing.gameday_every is None:
        yield Finding(
            ("testing",),
            "no game-day cadence",
            "add `gameday_every: 180d` under testing: and run `drkit gameday`",
        )
