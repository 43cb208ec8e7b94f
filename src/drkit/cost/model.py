"""The cost estimate: what each tier's DR costs per month, and the outage loss it buys down.

Pure arithmetic over the plan and what was measured (:class:`Measurements`, gathered by
``drkit.workspace`` from the repositories and drkit's state). Each :class:`Line` says
where its figure came from: ``measured`` (sizes from the repository, durations and tokens
from the state, availability from the gateway's events), ``plan estimate`` (the plan's
``cost.sizes_gb``, ``cost.drill_hours_per_year``, providers' SLAs...), or ``unknown``
(nothing to go on: the figure is 0 and the basis says what is missing). docs/cost.md
has the formulas.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from drkit.cost.availability import RouteAvailability, route_availability
from drkit.cost.lines import (
    CATEGORIES,
    PLAN_WIDE,
    Line,
    Measurements,
    egress_lines,
    eval_lines,
    storage_lines,
    testing_lines,
)
from drkit.cost.measure import RepoUsage
from drkit.plan.analysis import achievable_rpo
from drkit.plan.models import Plan

__all__ = [
    "CATEGORIES",
    "PLAN_WIDE",
    "CostReport",
    "Line",
    "Measurements",
    "TierCost",
    "amount",
    "estimate",
]


@dataclass(frozen=True)
class TierCost:
    tier: str
    monthly: float
    by_category: dict[str, float]
    outage_loss_year: float | None
    outage_loss_bought_down_year: float | None
    rto_s: float | None
    rpo_s: float | None
    multi_region: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "monthly": round(self.monthly, 2),
            "yearly": round(self.monthly * 12, 2),
            "by_category": {k: round(v, 2) for k, v in self.by_category.items()},
            "outage_loss_year": _r(self.outage_loss_year),
            "outage_loss_bought_down_year": _r(self.outage_loss_bought_down_year),
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "multi_region": self.multi_region,
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@dataclass
class CostReport:
    plan: str
    currency: str
    lines: list[Line]
    routes: list[RouteAvailability]
    route_loss_year: dict[str, float | None]
    component_rpo_s: dict[str, float | None]
    measurements: Measurements

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)

    def tier_names(self) -> list[str]:
        names = list(dict.fromkeys(line.tier for line in self.lines))
        names += [r.tier for r in self.routes if r.tier not in names]
        return sorted(n for n in names if n != PLAN_WIDE) + (
            [PLAN_WIDE] if PLAN_WIDE in names else []
        )

    def tiers(self, plan: Plan) -> list[TierCost]:
        out = []
        for name in self.tier_names():
            mine = [line for line in self.lines if line.tier == name]
            cats: dict[str, float] = defaultdict(float)
            for line in mine:
                cats[line.category] += line.monthly
            routes = [r for r in self.routes if r.tier == name]
            losses = [self.route_loss_year.get(r.route) for r in routes]
            loss = None if not routes or None in losses else sum(x or 0.0 for x in losses)
            bought = self._bought_down(plan, routes)
            tier = plan.tiers.get(name)
            out.append(
                TierCost(
                    name,
                    sum(cats.values()),
                    dict(cats),
                    loss,
                    bought,
                    tier.rto if tier else None,
                    tier.rpo if tier else None,
                    tier.multi_region if tier else None,
                )
            )
        return out

    def _bought_down(self, plan: Plan, routes: list[RouteAvailability]) -> float | None:
        total = 0.0
        for r in routes:
            price = plan.cost.outage_cost_per_hour.get(r.tier)
            with_dr, without = r.outage_hours_per_year, r.primary_outage_hours_per_year
            if price is None or with_dr is None or without is None:
                return None
            total += (without - with_dr) * price
        return total if routes else None

    def over_invested(self, plan: Plan) -> list[TierCost]:
        """Tiers that are not critical whose DR costs more per year than the outage loss
        their routes are expected to cause ("don't over-invest in DR for low-criticality
        systems"; DR711)."""
        return [
            t
            for t in self.tiers(plan)
            if t.tier != PLAN_WIDE
            and not plan.is_critical(t.tier)
            and t.outage_loss_year is not None
            and t.monthly * 12 > t.outage_loss_year
        ]

    def testing_year(self) -> float:
        """What the testing cadence costs a year: restore tests, drills and game days and
        the responders' time during them (not incidents); DR712 holds it to
        ``testing.budget``."""
        return 12 * sum(
            line.monthly
            for line in self.lines
            if line.category == "testing"
            or (line.category == "responders" and line.component != "incidents")
        )

    def warnings(self, plan: Plan) -> list[str]:
        """What ``drkit cost`` warns about: over-investment and testing over its budget."""
        out = [
            f"tier {t.tier!r}: DR costs {t.monthly * 12:,.2f} {self.currency} a year, "
            f"more than its expected outage loss of {t.outage_loss_year or 0.0:,.2f}"
            for t in self.over_invested(plan)
        ]
        budget = plan.testing.budget
        if budget is not None and self.testing_year() > budget:
            out.append(
                f"testing costs {self.testing_year():,.2f} {self.currency} a year, more than "
                f"testing.budget {budget:,.2f}"
            )
        return out

    def to_json(self, plan: Plan) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "warnings": self.warnings(plan),
            "currency": self.currency,
            "monthly": round(self.monthly, 2),
            "yearly": round(self.monthly * 12, 2),
            "tiers": [t.to_json() for t in self.tiers(plan)],
            "lines": [line.to_json() for line in self.lines],
            "routes": [
                {**r.to_json(), "outage_loss_year": _r(self.route_loss_year.get(r.route))}
                for r in self.routes
            ],
            "rpo_s": self.component_rpo_s,
            "repositories": {
                k: (v.to_json() if isinstance(v, RepoUsage) else {"error": v})
                for k, v in self.measurements.repositories.items()
            },
            "state": self.measurements.state.to_json() if self.measurements.state else None,
        }


def amount(x: float, sign: str = "") -> str:
    """A sum of money: two decimals, or two significant digits below 0.01 (a measured
    trickle is not nothing): ``1,234.50``, ``0.00000032``; ``sign="+"`` for deltas."""
    if 0 < abs(x) < 0.01:
        digits = 1 - math.floor(math.log10(abs(x)))
        return f"{x:{sign}.{digits}f}"
    return f"{x:{sign},.2f}"


def estimate(plan: Plan, measured: Measurements | None = None) -> CostReport:
    """Price the plan (see the module docstring and docs/cost.md)."""
    m = measured or Measurements()
    state = m.state
    lines: list[Line] = []
    lines += storage_lines(plan, m)
    lines += egress_lines(plan, m)
    for tier, price in plan.cost.standby_per_month.items():
        lines.append(Line(tier, "*", "standby", price, "plan estimate", "cost.standby_per_month"))
    lines += testing_lines(plan, state)
    lines += eval_lines(plan, state)
    routes = [
        route_availability(plan, r, state.availability if state else None)
        for r in plan.serving.routes
    ]
    loss: dict[str, float | None] = {}
    for r in routes:
        hourly = plan.cost.outage_cost_per_hour.get(r.tier)
        down = r.outage_hours_per_year
        loss[r.route] = None if hourly is None or down is None else down * hourly
    rpo: dict[str, float | None] = {}
    for _, comp in plan.components():
        est = achievable_rpo(plan, comp)
        rpo[comp.name] = est.total if est else None
    return CostReport(plan.name, plan.cost.currency, lines, routes, loss, rpo, m)
