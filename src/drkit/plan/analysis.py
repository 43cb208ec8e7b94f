"""Numbers derived from a plan, shared by the lint rules, drills and cost.

``achievable_rpo`` is what the schedule and the replication interval allow at best; the
drills measure the real figure and compare both against the tier's target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from drkit.plan.models import Component, Plan, Replica, Route
from drkit.types import format_duration


@dataclass(frozen=True)
class RpoEstimate:
    """Worst-case data loss: the longest gap between snapshots plus the copy lag."""

    gap: float  # longest time between two snapshots (seconds)
    lag: float  # longest time before a snapshot reaches the chosen replica (0: none)
    replica: str | None  # the replica whose copy interval was counted

    @property
    def total(self) -> float:
        return self.gap + self.lag

    def explain(self) -> str:
        text = f"snapshot every {format_duration(self.gap)}"
        if self.replica is not None:
            text += f" + copy to {self.replica} every {format_duration(self.lag)}"
        return text


def replicas_of(plan: Plan, component: Component) -> list[Replica]:
    """The replica repositories a component's snapshots are copied to."""
    by_name = {r.name: r for r in plan.repositories.replicas}
    return [by_name[n] for n in component.replicate_to if n in by_name]


def offsite_replicas(plan: Plan, component: Component) -> list[Replica]:
    """Replicas of ``component`` in a region other than the one its live data is in."""
    home = plan.component_region(component)
    return [r for r in replicas_of(plan, component) if r.region != home]


def achievable_rpo(plan: Plan, component: Component) -> RpoEstimate | None:
    """The best RPO the schedule allows, or ``None`` when the component has no schedule.

    When the component is replicated, the copy lag of its fastest replica counts too
    (preferring replicas in another region): a region loss loses what was not copied yet.
    """
    if component.schedule is None:
        return None
    gap = component.schedule.max_gap()
    candidates = offsite_replicas(plan, component) or replicas_of(plan, component)
    if not candidates:
        return RpoEstimate(gap=gap, lag=0.0, replica=None)
    fastest = min(candidates, key=lambda r: r.copy_every)
    return RpoEstimate(gap=gap, lag=fastest.copy_every, replica=fastest.name)


def retention_span(component: Component) -> float | None:
    """How far back the retention keeps snapshots (seconds), or ``None`` without one."""
    if component.retention is None:
        return None
    interval = component.schedule.max_gap() if component.schedule is not None else None
    return component.retention.span(interval)


def route_operators(route: Route) -> list[str]:
    """Distinct vendors operating a route's targets, in target order."""
    return list(dict.fromkeys(t.operator for t in route.targets))


def route_regions(route: Route) -> list[str]:
    return list(dict.fromkeys(t.region for t in route.targets))


def worst_case_failover(route: Route) -> float:
    """Seconds until the last target is tried when every earlier one hangs to its deadline."""
    d = route.deadlines
    per_attempt = min(d.connect + d.first_token, d.total)
    return per_attempt * (len(route.targets) - 1)


def critical_routes(plan: Plan) -> Iterator[tuple[int, Route]]:
    """``(index, route)`` of every serving route whose tier is critical."""
    for i, route in enumerate(plan.serving.routes):
        if plan.is_critical(route.tier):
            yield i, route
