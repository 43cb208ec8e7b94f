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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drkit.cost.availability import RouteAvailability, Source, route_availability
from drkit.cost.history import StateFigures
from drkit.cost.measure import MONTH_S, RepoUsage
from drkit.plan.analysis import achievable_rpo
from drkit.plan.models import Plan

GB = 1e9  # cloud prices are per decimal gigabyte
PLAN_WIDE = "-"
#: testing activities with a cadence field in ``testing`` (restore tests are per component)
ACTIVITIES = {
    "failover_drill": "failover_drill_every",
    "regional_failover": "regional_failover_every",
    "gameday": "gameday_every",
}
CATEGORIES = ("storage", "egress", "standby", "testing", "responders", "evals")


@dataclass(frozen=True)
class Line:
    """One priced item, per month, in the plan's currency."""

    tier: str  # a tier name, or "-" for plan-wide items
    component: str  # a component or route, "*" for the whole tier, or a repository
    category: str  # one of CATEGORIES
    monthly: float
    source: Source
    basis: str  # how the figure was reached, with its numbers
    region: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "component": self.component,
            "category": self.category,
            "region": self.region,
            "monthly": self.monthly,
            "source": self.source,
            "basis": self.basis,
        }


@dataclass
class Measurements:
    """What was measured; each part may be missing (then the plan's estimate is used)."""

    repositories: dict[str, RepoUsage | str] = field(default_factory=dict)  # str: why not
    state: StateFigures | None = None


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


def _gb(n: float) -> str:
    """Bytes in decimal units (as the prices count them): ``412.3 kB``, ``1.234 GB``."""
    for unit, size in (("GB", GB), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.{3 if unit == 'GB' else 1}f} {unit}"
    return f"{n:.0f} B"


def estimate(plan: Plan, measured: Measurements | None = None) -> CostReport:
    """Price the plan (see the module docstring and docs/cost.md)."""
    m = measured or Measurements()
    state = m.state
    lines: list[Line] = []
    lines += _storage(plan, m)
    lines += _egress(plan, m)
    for tier, price in plan.cost.standby_per_month.items():
        lines.append(Line(tier, "*", "standby", price, "plan estimate", "cost.standby_per_month"))
    lines += _testing(plan, state)
    lines += _evals(plan, state)
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


def _storage(plan: Plan, m: Measurements) -> list[Line]:
    price = plan.cost.storage_per_gb_month
    sizes = plan.cost.sizes_gb
    out: list[Line] = []
    repos = {r.name: r for r in [plan.repositories.primary, *plan.repositories.replicas]}
    for _, comp in plan.components():
        tier = comp.tier or PLAN_WIDE
        where = [plan.repositories.primary.name, *(n for n in comp.replicate_to if n in repos)]
        for repo_name in where:
            region = repos[repo_name].region
            usage = m.repositories.get(repo_name)
            if isinstance(usage, RepoUsage) and comp.name in usage.components:
                n = usage.components[comp.name]
                out.append(
                    Line(
                        tier,
                        comp.name,
                        "storage",
                        n / GB * price,
                        "measured",
                        f"{_gb(n)} stored in {repo_name} after dedup and compression "
                        f"× {price}/GB-month",
                        region,
                    )
                )
            elif comp.name in sizes:
                why = (
                    "not backed up there yet"
                    if isinstance(usage, RepoUsage)
                    else (f"{repo_name} not measured: {usage}" if usage else "not measured")
                )
                out.append(
                    Line(
                        tier,
                        comp.name,
                        "storage",
                        sizes[comp.name] * price,
                        "plan estimate",
                        f"cost.sizes_gb {sizes[comp.name]} GB × {price}/GB-month ({why})",
                        region,
                    )
                )
            else:
                out.append(
                    Line(
                        tier,
                        comp.name,
                        "storage",
                        0.0,
                        "unknown",
                        f"no snapshot in {repo_name} and no cost.sizes_gb entry",
                        region,
                    )
                )
    named = {c.name for _, c in plan.components()}
    for name, usage in m.repositories.items():
        if not isinstance(usage, RepoUsage):
            continue
        for other, n in sorted(usage.components.items()):
            if other in named:
                continue
            out.append(
                Line(
                    PLAN_WIDE,
                    other,
                    "storage",
                    n / GB * price,
                    "measured",
                    f"{_gb(n)} stored in {name} for snapshots of {other!r}, which is no plan "
                    "component (drkit's own state, or one removed from the plan)",
                    usage.region,
                )
            )
    for name, usage in m.repositories.items():
        if isinstance(usage, RepoUsage) and usage.overhead_bytes > 0:
            out.append(
                Line(
                    PLAN_WIDE,
                    name,
                    "storage",
                    usage.overhead_bytes / GB * price,
                    "measured",
                    f"{_gb(usage.overhead_bytes)} of pack headers, index, manifests and "
                    "unreferenced blobs (until prune)",
                    usage.region,
                )
            )
    return out


def _egress(plan: Plan, m: Measurements) -> list[Line]:
    """Cross-region copies: what the primary added in the last 30 days, per replica."""
    price = plan.cost.egress_per_gb
    primary = plan.repositories.primary
    usage = m.repositories.get(primary.name)
    copied = m.state.copied_bytes_month if m.state else {}
    out: list[Line] = []
    for rep in plan.repositories.replicas:
        if rep.region == primary.region:
            continue  # same-region copies are not egress
        comps = [c for _, c in plan.components() if rep.name in c.replicate_to]
        measured_new: Mapping[str, float] = (
            usage.new_bytes_month if isinstance(usage, RepoUsage) else {}
        )
        weights = {c.name: measured_new.get(c.name, 0.0) for c in comps}
        per_component = m.state.copied_by_component_month.get(rep.name) if m.state else None
        if per_component is not None:
            for c in comps:
                n = per_component.get(c.name, 0.0)
                out.append(
                    Line(
                        c.tier or PLAN_WIDE,
                        c.name,
                        "egress",
                        n / GB * price,
                        "measured",
                        f"{_gb(n)} of its snapshots copied to {rep.name} in 30 days "
                        f"(repository.copied events) × {price}/GB",
                        rep.region,
                    )
                )
            continue
        if rep.name in copied and sum(weights.values()) > 0:
            total = copied[rep.name]
            for c in comps:
                n = total * weights[c.name] / sum(weights.values())
                out.append(
                    Line(
                        c.tier or PLAN_WIDE,
                        c.name,
                        "egress",
                        n / GB * price,
                        "measured",
                        f"{_gb(n)} copied to {rep.name} in 30 days (its share of the copy "
                        f"events' {_gb(total)}) × {price}/GB",
                        rep.region,
                    )
                )
            continue
        for c in comps:
            if isinstance(usage, RepoUsage) and c.name in usage.components:
                n = measured_new.get(c.name, 0.0)
                out.append(
                    Line(
                        c.tier or PLAN_WIDE,
                        c.name,
                        "egress",
                        n / GB * price,
                        "measured",
                        f"{_gb(n)} added to {primary.name} in the last 30 days, copied to "
                        f"{rep.name} × {price}/GB",
                        rep.region,
                    )
                )
            elif c.name in plan.cost.sizes_gb:
                gb = plan.cost.sizes_gb[c.name] * plan.cost.monthly_change
                out.append(
                    Line(
                        c.tier or PLAN_WIDE,
                        c.name,
                        "egress",
                        gb * price,
                        "plan estimate",
                        f"cost.sizes_gb {plan.cost.sizes_gb[c.name]} GB × monthly_change "
                        f"{plan.cost.monthly_change} to {rep.name} × {price}/GB",
                        rep.region,
                    )
                )
    return out


def _per_month(every: float | None) -> float:
    return 0.0 if not every else MONTH_S / every


def _testing(plan: Plan, state: StateFigures | None) -> list[Line]:
    c = plan.cost
    rate = c.drill_cost_per_hour
    people = c.responders_per_drill * c.responder_cost_per_hour
    out: list[Line] = []
    runs = _per_month(plan.testing.restore_test_every)
    measured_any = False
    if state is not None and runs:
        for _, comp in plan.components():
            hours = state.restore_test_hours.get(comp.name)
            if hours is None:
                continue
            measured_any = True
            out.append(
                Line(
                    comp.tier or PLAN_WIDE,
                    comp.name,
                    "testing",
                    hours * runs * rate,
                    "measured",
                    f"restore test {hours * 3600:.1f} s (measured mean) × {runs:.2f}/month "
                    f"× {rate}/hour",
                )
            )
    for activity, field_name in ACTIVITIES.items():
        runs = _per_month(getattr(plan.testing, field_name))
        hours = state.drill_hours.get(activity) if state else None
        if not runs or hours is None:
            continue
        measured_any = True
        basis = f"{activity} {hours * 3600:.1f} s (measured mean) × {runs:.2f}/month"
        out.append(
            Line(
                PLAN_WIDE,
                activity,
                "testing",
                hours * runs * rate,
                "measured",
                f"{basis} × {rate}/hour",
            )
        )
        if people:
            out.append(
                Line(
                    PLAN_WIDE,
                    activity,
                    "responders",
                    hours * runs * people,
                    "measured",
                    f"{basis} × {c.responders_per_drill} responders × "
                    f"{c.responder_cost_per_hour}/hour",
                )
            )
    if not measured_any and c.drill_hours_per_year:
        hours = c.drill_hours_per_year / 12
        out.append(
            Line(
                PLAN_WIDE,
                "*",
                "testing",
                hours * rate,
                "plan estimate",
                f"cost.drill_hours_per_year {c.drill_hours_per_year} / 12 × {rate}/hour",
            )
        )
        if people:
            out.append(
                Line(
                    PLAN_WIDE,
                    "*",
                    "responders",
                    hours * people,
                    "plan estimate",
                    f"cost.drill_hours_per_year / 12 × {c.responders_per_drill} "
                    f"responders × {c.responder_cost_per_hour}/hour",
                )
            )
    if people and state is not None and state.incident_hours_year:
        hours = state.incident_hours_year / 12
        out.append(
            Line(
                PLAN_WIDE,
                "incidents",
                "responders",
                hours * people,
                "measured",
                f"{state.incidents_year} incident(s), {state.incident_hours_year:.2f} h "
                f"in the last year / 12 × {c.responders_per_drill} responders × "
                f"{c.responder_cost_per_hour}/hour",
            )
        )
    return out


def _evals(plan: Plan, state: StateFigures | None) -> list[Line]:
    if state is None or not state.eval_tokens_month:
        return []
    prices = plan.cost.token_price_per_million
    out: list[Line] = []
    for where, tokens in sorted(state.eval_tokens_month.items()):
        route = next(
            (
                r
                for r in plan.serving.routes
                if r.name == where or any(t.name == where for t in r.targets)
            ),
            None,
        )
        target = where if route is None or route.name != where else route.targets[0].name
        price = prices.get(target)
        tier = route.tier if route else PLAN_WIDE
        if price is None:
            out.append(
                Line(
                    tier,
                    where,
                    "evals",
                    0.0,
                    "unknown",
                    f"{tokens:.0f} tokens in 30 days; no "
                    f"cost.token_price_per_million for {target!r}",
                )
            )
        else:
            out.append(
                Line(
                    tier,
                    where,
                    "evals",
                    tokens / 1e6 * price,
                    "measured",
                    f"{tokens:.0f} tokens in 30 days (eval.run events) × {price}/million",
                )
            )
    return out
