"""What a live drill faults, and the rails checked before anything reaches the gateway.

``provider-outage --live`` faults one route (``--subject``; default the first) on its
primary or ``--target``; ``region-outage --live`` drains every target of the region on
every route of the plan that has one there (``--subject`` narrows it to one route). Every
route to fault is checked first, and one that fails refuses the whole drill (exit 2,
naming the route) before any fault is installed; the gateway checks them again, all or
none, when the faults arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drkit.drills.live_gateway import LiveGateway, as_input_error
from drkit.drills.live_options import LiveOptions, check_limits
from drkit.errors import DrillError, LiveFaultRefused, UsageError
from drkit.plan.models import Plan, Route


@dataclass(frozen=True, slots=True)
class Drained:
    """One route of a live drill and the targets faulted on it."""

    route: Route
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegionDrain:
    """The routes a regional exercise drains, and those it leaves alone."""

    region: str
    routes: tuple[Drained, ...]
    #: routes without a target in the region
    not_affected: tuple[str, ...]
    #: routes with a target in the region left out by ``--subject``
    left_out: tuple[str, ...]

    @property
    def whole(self) -> bool:
        """Every route with a target in the region is drained: the regional exercise."""
        return not self.left_out


def _route(plan: Plan, name: str) -> Route:
    try:
        return plan.route(name)
    except KeyError:
        known = ", ".join(r.name for r in plan.serving.routes) or "none"
        raise UsageError(f"the plan has no route {name!r}", hint=f"routes: {known}") from None


def region_drain(plan: Plan, region: str | None, subject: str | None) -> RegionDrain:
    """The routes to drain of ``region`` (default: the region of the first route's, or
    ``subject``'s, primary); UsageError for a route that would have no target left."""
    routes = list(plan.serving.routes)
    if not routes:
        raise UsageError(
            "a live region-outage drains the routes of the gateway: the plan has none",
            hint="add serving.routes, or drill the region without --live",
        )
    chosen = [_route(plan, subject)] if subject is not None else routes
    region = region or chosen[0].targets[0].region
    affected = [r.name for r in routes if any(t.region == region for t in r.targets)]
    drained = tuple(
        Drained(r, tuple(t.name for t in r.targets if t.region == region))
        for r in chosen
        if r.name in affected
    )
    if not drained:
        regions = ", ".join(sorted({t.region for r in chosen for t in r.targets}))
        if subject is not None:
            raise UsageError(
                f"route {subject} has no target in region {region!r}",
                hint=f"its regions: {regions}",
            )
        raise UsageError(
            f"no route of plan {plan.name!r} has a target in region {region!r}",
            hint=f"regions of the routes' targets: {regions}",
        )
    for d in drained:
        if len(d.targets) == len(d.route.targets):
            raise UsageError(
                f"route {d.route.name} has no target outside region {region}: draining the "
                "region would fail every real client of it",
                hint="give the route a target in another region, or drain one other route "
                "with --subject ROUTE",
            )
    return RegionDrain(
        region=region,
        routes=drained,
        not_affected=tuple(r.name for r in routes if r.name not in affected),
        left_out=tuple(n for n in affected if n not in {d.route.name for d in drained}),
    )


def preflight(
    plan: Plan, drained: Sequence[Drained], options: LiveOptions, gateway: LiveGateway
) -> None:
    """Check input and rails for every route before the drill's journal starts.

    UsageError (exit 2) for a fraction or duration out of bounds, an unknown target, a
    wrong admin key, a route without a healthy secondary, another live drill on a route.
    """
    check_limits(options, plan.testing.live_limits)
    for d in drained:
        names = [t.name for t in d.route.targets]
        for t in d.targets:
            if t not in names:
                raise UsageError(
                    f"route {d.route.name} has no target {t!r}",
                    hint="its targets: " + ", ".join(names),
                )
    try:
        view = gateway.targets()
    except LiveFaultRefused as exc:
        raise as_input_error(exc, gateway.url) from None
    except DrillError as exc:
        raise UsageError(str(exc), hint=exc.hint) from None
    state = {t["name"]: t for t in view.get("targets", [])}
    for d in drained:
        _route_rails(d, view, state, gateway.url)


def _route_rails(
    d: Drained, view: dict[str, Any], state: dict[str, dict[str, Any]], url: str
) -> None:
    route = d.route
    for f in view.get("live_faults", []):
        if f.get("route") == route.name:
            raise UsageError(
                f"live drill {f.get('drill')} ({f.get('owner')}) is already running on "
                f"route {route.name}",
                hint=f"wait for it, or `drkit drill abort {f.get('drill')}`",
            )
    missing = [t for t in d.targets if t not in state]
    if missing:
        raise UsageError(
            f"the gateway at {url} has no target {missing[0]!r} (route {route.name})",
            hint="is it serving this plan? (GET /admin/targets)",
        )
    healthy = [
        t.name
        for t in route.targets
        if t.name not in d.targets and state.get(t.name, {}).get("state") == "healthy"
    ]
    if not healthy:
        raise UsageError(
            f"route {route.name} has no healthy secondary besides {', '.join(d.targets)} on "
            f"the gateway: a live fault would fail real clients",
            hint="bring a secondary back into service first (GET /admin/targets)",
        )
