"""``drkit plan check``'s cost rules: DR cost above the outage loss it buys down, and
testing above its budget (warnings: advice, not a failed check).

Not in :mod:`drkit.plan.lint`'s registry (which stays pure plan arithmetic below
``drkit.cost``): ``plan check`` adds these beside the state-fed rules, priced from what
drkit measured when it ran here, else from the plan's estimates.
"""

from __future__ import annotations

from collections.abc import Iterator

from drkit.cost.model import CostReport, Measurements, estimate
from drkit.plan.lint import Finding, LintContext, Rule, Severity, Violation, locate
from drkit.plan.models import Plan


def _source(report: CostReport, *, tier: str | None = None, testing: bool = False) -> str:
    lines = [
        x
        for x in report.lines
        if (tier is None or x.tier == tier)
        and (not testing or x.category in ("testing", "responders"))
    ]
    if lines and all(x.source == "measured" for x in lines):
        return "measured"
    if any(x.source == "measured" for x in lines):
        return "partly measured"
    return "plan estimates"


def _over_investment(plan: Plan, report: CostReport) -> Iterator[Finding]:
    cur = report.currency
    for t in report.over_invested(plan):
        yield Finding(
            ("tiers", t.tier),
            f"tier {t.tier!r}: DR costs {t.monthly * 12:,.2f} {cur} a year "
            f"({_source(report, tier=t.tier)}), more than the {t.outage_loss_year or 0.0:,.2f} "
            f"{cur} its routes' outages are expected to cost",
            f"see `drkit cost --what-if COMPONENT=<cheaper tier>`, or raise "
            f"cost.outage_cost_per_hour.{t.tier} if an hour down costs more",
        )


def _testing_budget(plan: Plan, report: CostReport) -> Iterator[Finding]:
    budget = plan.testing.budget
    spent = report.testing_year()
    if budget is None or spent <= budget:
        return
    yield Finding(
        ("testing", "budget"),
        f"the testing cadence costs {spent:,.2f} {report.currency} a year "
        f"({_source(report, testing=True)}), more than testing.budget {budget:,.2f}",
        "raise testing.budget, or space the drills out (within DR501-DR503)",
    )


def _unused(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    return iter(())  # evaluated by cost_violations with a priced plan


COST_RULES: tuple[Rule, ...] = (
    Rule(
        "DR711",
        "dr-cost-within-outage-loss",
        Severity.WARNING,
        "a tier that is not critical costs no more in DR a year than its expected outage loss",
        "Tiered DR: don't over-invest in DR for low-criticality systems.",
        _unused,
    ),
    Rule(
        "DR712",
        "testing-within-budget",
        Severity.WARNING,
        "the testing cadence costs no more a year than testing.budget",
        "Testing cost: DR testing consumes capacity. Budget for this.",
        _unused,
    ),
)
_CHECKS = {"DR711": _over_investment, "DR712": _testing_budget}


def cost_violations(plan: Plan, measured: Measurements | None = None) -> list[Violation]:
    """DR711 and DR712 on ``plan`` priced with ``measured`` (``None``: the plan alone)."""
    report = estimate(plan, measured)
    return [
        locate(plan, rule, finding)
        for rule in COST_RULES
        for finding in _CHECKS[rule.id](plan, report)
    ]
