"""The priced lines of the cost estimate (:mod:`drkit.cost.model` adds them up): storage
and egress per component and repository, testing, responders and evals. Each says where
its figure came from (docs/cost.md has the formulas)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drkit.cost.availability import Source
from drkit.cost.history import StateFigures
from drkit.cost.measure import MONTH_S, RepoUsage
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


def _gb(n: float) -> str:
    """Bytes in decimal units (as the prices count them): ``412.3 kB``, ``1.234 GB``."""
    for unit, size in (("GB", GB), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.{3 if unit == 'GB' else 1}f} {unit}"
    return f"{n:.0f} B"


def storage_lines(plan: Plan, m: Measurements) -> list[Line]:
    out: list[Line] = []
    repos = {r.name: r for r in [plan.repositories.primary, *plan.repositories.replicas]}
    for _, comp in plan.components():
        where = [plan.repositories.primary.name, *(n for n in comp.replicate_to if n in repos)]
        for repo_name in where:
            out.append(
                _stored(
                    plan, m, comp.name, comp.tier or PLAN_WIDE, repo_name, repos[repo_name].region
                )
            )
    return out + _unplanned_storage(plan, m)


def _stored(
    plan: Plan, m: Measurements, comp: str, tier: str, repo_name: str, region: str | None
) -> Line:
    """One component's storage in one repository: measured, else the plan's size."""
    price = plan.cost.storage_per_gb_month
    sizes = plan.cost.sizes_gb
    usage = m.repositories.get(repo_name)
    if isinstance(usage, RepoUsage) and comp in usage.components:
        n = usage.components[comp]
        basis = f"{_gb(n)} stored in {repo_name} after dedup and compression × {price}/GB-month"
        return Line(tier, comp, "storage", n / GB * price, "measured", basis, region)
    if comp in sizes:
        why = (
            "not backed up there yet"
            if isinstance(usage, RepoUsage)
            else (f"{repo_name} not measured: {usage}" if usage else "not measured")
        )
        basis = f"cost.sizes_gb {sizes[comp]} GB × {price}/GB-month ({why})"
        return Line(tier, comp, "storage", sizes[comp] * price, "plan estimate", basis, region)
    basis = f"no snapshot in {repo_name} and no cost.sizes_gb entry"
    return Line(tier, comp, "storage", 0.0, "unknown", basis, region)


def _unplanned_storage(plan: Plan, m: Measurements) -> list[Line]:
    """What the repositories hold beyond the plan's components: snapshots of no component
    (drkit's own state, removed components) and the repositories' own overhead."""
    price = plan.cost.storage_per_gb_month
    out: list[Line] = []
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


def egress_lines(plan: Plan, m: Measurements) -> list[Line]:
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


def testing_lines(plan: Plan, state: StateFigures | None) -> list[Line]:
    c = plan.cost
    rate = c.drill_cost_per_hour
    people = c.responders_per_drill * c.responder_cost_per_hour
    out = _restore_tests(plan, state) + _drills(plan, state)
    if not out and c.drill_hours_per_year:
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


def _restore_tests(plan: Plan, state: StateFigures | None) -> list[Line]:
    """Measured restore tests, per component, at the plan's cadence."""
    rate = plan.cost.drill_cost_per_hour
    runs = _per_month(plan.testing.restore_test_every)
    out: list[Line] = []
    if state is None or not runs:
        return out
    for _, comp in plan.components():
        hours = state.restore_test_hours.get(comp.name)
        if hours is None:
            continue
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
    return out


def _drills(plan: Plan, state: StateFigures | None) -> list[Line]:
    """Measured drills and game days at the plan's cadences, with their responders."""
    c = plan.cost
    rate = c.drill_cost_per_hour
    people = c.responders_per_drill * c.responder_cost_per_hour
    out: list[Line] = []
    for activity, field_name in ACTIVITIES.items():
        runs = _per_month(getattr(plan.testing, field_name))
        hours = state.drill_hours.get(activity) if state else None
        if not runs or hours is None:
            continue
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
    return out


def eval_lines(plan: Plan, state: StateFigures | None) -> list[Line]:
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
