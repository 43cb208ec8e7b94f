"""``provider-outage``: the route's primary provider fails (503s, then a black hole).

Recovery is the gateway's: it must fail over to the next target before the client sees
anything. Measured: client-visible errors, RTO = first good answer from another target
after the fault, detection = the gateway's first failover or ejection event, upstream
attempts that still went to the failed primary, and (in rollback, informational) the
time until traffic is back on the primary once it recovers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.stack import Stack
from drkit.errors import DrillError, UsageError
from drkit.plan.models import Plan, Route

if TYPE_CHECKING:  # the rehearsal runs the gateway: it needs the gateway extra, listing does not
    from drkit.drills.rehearsal import Rehearsal

#: consecutive good answers the verify phase wants from the surviving target
STABLE_ANSWERS = 5


def pick_route(plan: Plan, name: str | None) -> Route:
    if name is not None:
        try:
            return plan.route(name)
        except KeyError:
            known = ", ".join(r.name for r in plan.serving.routes) or "none"
            raise UsageError(f"the plan has no route {name!r}", hint=f"routes: {known}") from None
    return plan.serving.routes[0]


def unsupported(plan: Plan) -> str | None:
    if not plan.serving.routes:
        return "the plan has no serving routes (serving.routes) to fail over"
    return None


def recovery_wait(route: Route) -> float:
    """How long recovery may take before the drill gives up: a few attempt deadlines."""
    d = route.deadlines
    return 3 * (d.connect + d.first_token) + 5.0


@dataclass
class ProviderOutage:
    """One run of the drill: the route, its primary, the rehearsal, what was measured.

    Each step is a method; what steps hand on to later ones are typed fields here (the
    rehearsal, the primary's request count before the fault), not untyped context values.
    """

    plan: Plan
    route: Route
    rehearsal: Rehearsal
    primary_before: int = 0

    @property
    def primary(self) -> str:
        return self.route.targets[0].name

    # --- steady state ---

    def start(self, ctx: DrillContext) -> None:
        self.rehearsal.start()

    def healthy(self, ctx: DrillContext) -> bool:
        a = self.rehearsal.ask("steady state")
        if not a.ok or a.target != self.primary:
            raise DrillError(f"expected a complete answer from {self.primary}, got {a}")
        return True

    # --- fault ---

    def errors(self, ctx: DrillContext) -> None:
        r = self.rehearsal
        self.primary_before = r.upstream_requests(self.primary)
        r.fail(self.primary, {"kind": "error", "status": 503})
        for i in range(3):
            r.ask(f"during 503s {i}")

    def black_hole(self, ctx: DrillContext) -> None:
        r = self.rehearsal
        before = r.upstream_requests(self.primary)
        r.fail(self.primary, {"kind": "black_hole"})
        for i in range(2):
            r.ask(f"during black hole {i}")
        # 0 when the earlier errors had already ejected the primary (clients never wait
        # on the black hole); otherwise each one cost a first-token deadline
        ctx.metric("black_hole_attempts", r.upstream_requests(self.primary) - before)

    # --- recovery ---

    def fail_over(self, ctx: DrillContext) -> bool:
        r, route = self.rehearsal, self.route
        fault_at = ctx.marker("fault_injected") or 0.0
        if len(route.targets) < 2:
            raise DrillError(
                f"no secondary target: route {route.name!r} has only {self.primary!r}, "
                "so nothing can serve while it is down"
            )
        deadline = time.time() + recovery_wait(route)
        while True:
            good = [a for a in r.answers if a.at >= fault_at and a.ok and a.target != self.primary]
            if good:
                ctx.mark("recovered", f"first good answer from {good[0].target}", at=good[0].at)
                break
            if time.time() > deadline:
                raise DrillError(
                    f"no good answer from another target within {recovery_wait(route):.0f}s"
                )
            r.ask("recovering")
        detected = r.first_event("failover", "ejection", since=fault_at)
        if detected is not None:
            ctx.mark("detected", "the gateway's first failover/ejection", at=detected)
        ctx.record_rpo(0.0, "serving is stateless: no data at risk")
        return True

    # --- verify ---

    def stable(self, ctx: DrillContext) -> bool:
        bad = []
        for i in range(STABLE_ANSWERS):
            a = self.rehearsal.ask(f"after failover {i}")
            if not a.ok or a.target == self.primary:
                bad.append(a)
        if bad:
            raise DrillError(f"{len(bad)} of {STABLE_ANSWERS} answers after failover were not good")
        return True

    def invisible(self, ctx: DrillContext) -> bool:
        r = self.rehearsal
        fault_at = ctx.marker("fault_injected") or 0.0
        during = [a for a in r.answers if a.at >= fault_at]
        errors_seen = sum(1 for a in during if not a.ok)
        ctx.metric("requests", len(during))
        ctx.metric("client_visible_errors", errors_seen)
        ctx.metric("primary_attempts", r.upstream_requests(self.primary) - self.primary_before)
        ctx.metric("max_client_latency_s", round(max(a.latency_s for a in during), 3))
        if errors_seen:
            raise DrillError(f"{errors_seen} client-visible errors during the outage (target 0)")
        return True

    # --- rollback ---

    def clear(self, ctx: DrillContext) -> None:
        if self.rehearsal.sims:
            self.rehearsal.clear()

    def failback(self, ctx: DrillContext) -> None:
        r = self.rehearsal
        if not r.sims or "recovered" not in {m.name for m in ctx.markers}:
            return
        cleared = time.time()
        limit = self.plan.serving.gateway.health.probe_every * 2 + 5.0
        while time.time() - cleared < limit:
            if r.ask("failback").target == self.primary:
                ctx.metric("failback_s", round(time.time() - cleared, 3))
                return
            time.sleep(0.1)

    def stop(self, ctx: DrillContext) -> None:
        self.rehearsal.stop()

    def gateway_view(self, ctx: DrillContext) -> None:
        """The gateway's own events (failover, ejection, recovery) onto the timeline."""
        for ev in self.rehearsal.events.events:
            ctx.mark(f"gateway.{ev.kind}", f"{ev.component}: {ev.message}", at=ev.at)

    def drill(self) -> Drill:
        tier = self.plan.tiers[self.route.tier]
        primary, n = self.primary, len(self.route.targets)
        return Drill(
            scenario="provider-outage",
            description=f"route {self.route.name!r}: primary {primary!r} returns 503s, "
            "then black-holes",
            steady_state=(
                Step(f"start gateway and {n} simulated providers", self.start),
                Step(f"route answers from its primary {primary}", self.healthy),
            ),
            fault=(
                Step(f"{primary} answers 503", self.errors),
                Step(f"{primary} black-holes requests", self.black_hole),
            ),
            recovery=(Step("gateway serves from another target", self.fail_over),),
            verify=(
                Step(f"{STABLE_ANSWERS} complete answers from the surviving target", self.stable),
                Step("no client-visible errors", self.invisible),
            ),
            rollback=(
                Step("clear the simulator faults", self.clear),
                Step("traffic returns to the primary (measured)", self.failback),
                Step("stop the rehearsal", self.stop),
                Step("journal the gateway's events", self.gateway_view),
            ),
            rto_target_s=tier.rto,
            rpo_target_s=tier.rpo,
        )


def state_recorder(plan: Plan) -> Callable[[str, str, str, dict[str, Any]], None]:
    """Records an event in drkit's state for the plan (opened when first used)."""

    def record(kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        from drkit.state.store import StateStore, plan_state_path

        store = StateStore(plan_state_path(plan))
        try:
            store.record_event(kind, component, message, data)
        finally:
            store.close()

    return record


def build(stack: Stack, options: DrillOptions) -> Drill:
    route = pick_route(stack.plan, options.subject)
    if options.gateway is not None:  # a live drill on the running gateway's real traffic
        from drkit.drills.live import build_live

        return build_live(stack.plan, route, options.gateway, record=state_recorder(stack.plan))
    # the rehearsal runs the gateway: imported here, so that listing scenarios and the
    # layers below work without the gateway extra (docs/architecture.md)
    from drkit.drills.rehearsal import Rehearsal

    rehearsal = Rehearsal(stack.plan, route, seed=options.seed)
    return ProviderOutage(stack.plan, route, rehearsal).drill()


SCENARIO = Scenario(
    name="provider-outage",
    summary="the primary provider of a route fails (503s, then a black hole); "
    "the gateway must serve from the next target",
    cadence="failover_drill",
    unsupported=unsupported,
    build=build,
)
