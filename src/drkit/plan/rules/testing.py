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


def _cadence(
    every: float | None,
    field: str,
    limit: float,
    missing: tuple[str, str],
    too_rare: tuple[str, str],
    too_rare_severity: Severity | None = None,
) -> Iterator[Finding]:
    """A missing cadence (``missing`` = message, hint) or one longer than ``limit``
    (``too_rare`` = message template with ``{every}``, hint)."""
    if every is None:
        yield Finding(("testing",), *missing)
    elif every > limit:
        message, hint = too_rare
        yield Finding(
            ("testing", field),
            message.format(every=format_duration(every)),
            hint,
            too_rare_severity,
        )


@rule(
    "DR501",
    "restore-test-cadence",
    Severity.ERROR,
    "restore tests have a cadence (at most every 90 days)",
    "Test restoration periodically. Backups that don't restore are worse than no backups.",
)
def restore_test_cadence(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    yield from _cadence(
        plan.testing.restore_test_every,
        "restore_test_every",
        RESTORE_TEST_MAX,
        (
            "no restore-test cadence: backups that are never restored are not known to work",
            "add `testing: {restore_test_every: 30d}`",
        ),
        ("restore tests every {every}; test at least every 90d", "set `restore_test_every: 30d`"),
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
    yield from _cadence(
        plan.testing.failover_drill_every,
        "failover_drill_every",
        QUARTER,
        (
            "no failover-drill cadence; the framework asks for quarterly drills",
            "add `failover_drill_every: 90d` under testing:",
        ),
        (
            "failover drills every {every}; needs at least quarterly (90d)",
            "set `failover_drill_every: 90d` or less",
        ),
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
    yield from _cadence(
        plan.testing.regional_failover_every,
        "regional_failover_every",
        YEAR,
        (
            "no regional-failover cadence although a tier is multi-region",
            "add `regional_failover_every: 365d` under testing:",
        ),
        (
            "regional failover every {every}; needs at least yearly",
            "set `regional_failover_every: 365d` or less",
        ),
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
