"""Live drills: a fault on a fraction of a running gateway's real traffic.

``drkit drill run provider-outage --live URL --fraction 0.05 --duration 10m`` installs a
live fault through the gateway's admin API (:mod:`drkit.gateway.live`), renews its lease
while it runs and reads the gateway's figures of the real traffic: requests affected,
client-visible errors, latency the faulted requests added, and the time until another
target carried the faulted share. The gateway ends the fault by itself at the duration's
end or when the lease is not renewed (this process killed, the network cut), and at once
when a stop condition trips (the route's client-visible error rate, the added p99, the
quality canary). Rollback always lifts the fault; ``drkit drill abort ID`` lifts it from
elsewhere.

``region-outage --live`` (the annual regional exercise) drains the region's targets on
every route that has one there: one drill, one id and owner, one fault per route
installed all or none, one lease renewal for all of them, and whatever lifts one lifts
all; the figures and the failback are measured per route as well as for the drill.

Only httpx here (:mod:`drkit.drills.live_gateway`): the drill is a client of the gateway,
never a part of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.drills.engine import Drill, DrillContext, Step, new_drill_id
from drkit.drills.live_gateway import LiveGateway, abort
from drkit.drills.live_options import LiveOptions
from drkit.drills.live_preflight import Drained, RegionDrain, preflight, region_drain
from drkit.errors import DrillError, LiveFaultRefused, UsageError
from drkit.plan.models import Plan, Route
from drkit.types import format_duration

#: event kind in drkit's state when a live fault was installed (``drill abort`` reads it)
EVENT_STARTED = "drill.live_fault"
#: a journal metric set to 1 by live drills
LIVE_METRIC = "live"
#: a journal metric set to 1 by a live region-outage that drained the whole region (every
#: route with a target there, all of its traffic): only such a run is the regional
#: failover exercise (``testing.regional_failover_every``)
REGION_METRIC = "region_drained"
#: how long a drill waits for every gateway process sharing the fault to lift it (they
#: re-read the shared state every second; a silent one counts as gone after 3 s)
SHARED_LIFT_S = 5.0
#: the per-route figures kept as journal metrics ``route.<name>.<figure>``
_ROUTE_FIGURES = (
    "requests",
    "affected",
    "client_visible_errors",
    "added_p99_s",
    "carried_after_s",
)


@dataclass
class LiveDrill:
    """One live drill run: install, hold (renewing), measure, lift."""

    plan: Plan
    drained: tuple[Drained, ...]
    options: LiveOptions
    gateway: LiveGateway
    scenario: str = "provider-outage"
    id: str = ""
    #: records an event in drkit's state (kind, component, message, data)
    record: Callable[[str, str, str, dict[str, Any]], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    #: region-outage: what is drained of which region, and where the standby ledgers are
    region: RegionDrain | None = None
    state_dir: Path | None = None
    fault: dict[str, Any] = field(default_factory=dict)
    installed: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = new_drill_id(self.scenario)

    @property
    def lease_s(self) -> float:
        return self.options.lease_s or self.plan.testing.live_limits.lease

    @property
    def routes(self) -> str:
        return ", ".join(d.route.name for d in self.drained)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for d in self.drained for t in d.targets)

    # --- steady state ---

    def steady(self, ctx: DrillContext) -> bool:
        view = self.gateway.targets()
        state = {t["name"]: t["state"] for t in view["targets"]}
        ctx.note("targets", state)
        if self.region is not None:
            ctx.note("routes_drained", [d.route.name for d in self.drained])
            ctx.note("routes_not_affected", list(self.region.not_affected))
            if self.region.left_out:
                ctx.note("routes_left_out", list(self.region.left_out))
        for d in self.drained:
            others = [
                t.name
                for t in d.route.targets
                if t.name not in d.targets and state.get(t.name) == "healthy"
            ]
            if not others:
                raise DrillError(f"route {d.route.name} has no healthy secondary")
        return True

    # --- fault ---

    def install(self, ctx: DrillContext) -> None:
        limits = self.plan.testing.live_limits
        spec = {
            "drill": self.id,
            "owner": self.options.owner,
            "routes": [{"route": d.route.name, "targets": list(d.targets)} for d in self.drained],
            "fraction": self.options.fraction,
            "duration_s": self.options.duration_s,
            "lease_s": self.lease_s,
            "max_error_rate": limits.max_error_rate,
            "max_added_p99_s": limits.max_added_p99,
            "scenario": self.scenario,
        }
        self.fault = self.gateway.install(spec)
        self.installed = time.time()  # the lease runs from here: the renewals count from it
        ctx.mark("fault_injected", "live fault installed", at=float(self.fault["started_at"]))
        ctx.note("fault", {k: v for k, v in self.fault.items() if k not in ("figures", "routes")})
        ctx.metric(LIVE_METRIC, 1.0)
        if self.region is not None:
            whole = self.region.whole and self.options.fraction >= 1.0
            ctx.metric(REGION_METRIC, 1.0 if whole else 0.0)
        if self.record is not None:
            self.record(
                EVENT_STARTED,
                self.id,
                f"live drill {self.id} ({self.options.owner}) faults {self.options.fraction:.2%} "
                f"of route {self.routes} on {', '.join(self.targets)} at {self.gateway.url}",
                {
                    "drill": self.id,
                    "gateway": self.gateway.url,
                    "route": self.drained[0].route.name,
                    "routes": {d.route.name: list(d.targets) for d in self.drained},
                    "targets": list(self.targets),
                    "fraction": self.options.fraction,
                    "owner": self.options.owner,
                    "ends_at": self.fault["ends_at"],
                },
            )

    # --- recovery: hold the fault, renewing its lease ---

    def hold(self, ctx: DrillContext) -> bool:
        """One renewal a third of the lease renews the faults of every route."""
        every = max(0.05, self.lease_s / 3)
        ends_at = float(self.fault["ends_at"])
        due = self.installed + every  # every third of the lease, however slow a call
        while True:
            left = ends_at - time.time()
            if left <= 0:
                break
            self.sleep(max(0.0, min(due - time.time(), left)))
            due = max(due, time.time()) + every
            try:
                self.fault = self.gateway.renew(self.id)
            except LiveFaultRefused as exc:
                if exc.status != 410:
                    raise
                break  # lifted: by its duration, a stop condition or an abort
            self._marks(ctx, self.fault)
        self.final = self._settled()
        self._marks(ctx, self.final)
        self._measured(ctx)
        why = str(self.final.get("why") or "")
        ctx.note("lifted", why)
        if why.startswith("stop_condition"):
            raise DrillError(f"stop condition tripped, fault lifted: {why.split(': ', 1)[-1]}")
        if why == "aborted":
            raise DrillError("aborted (`drkit drill abort`): fault lifted")
        if why == "lease":
            raise DrillError("the gateway lifted the fault: its lease was not renewed in time")
        if why and why != "duration":
            raise DrillError(f"the fault was lifted before its end ({why})")
        return True

    def _settled(self) -> dict[str, Any]:
        """The fault once the gateway lifted it (its end is the gateway's to make)."""
        deadline = time.time() + 2.0
        while True:
            view = self.gateway.get(self.id)
            if view["state"] == "lifted" or time.time() > deadline:
                break
            self.sleep(0.05)
        if view["state"] == "lifted" and (view.get("processes", 1) > 1 or view.get("shared")):
            view = self._all_lifted(view)  # each process leaves its final figures as it lifts
        return view

    def _all_lifted(self, view: dict[str, Any]) -> dict[str, Any]:
        """Wait until no gateway process applies the fault (a process that went silent for
        the gateway's ``SILENT_S`` counts as gone), or a few seconds."""
        deadline = time.time() + SHARED_LIFT_S
        while int(view.get("applying") or 0) > 0 and time.time() < deadline:
            self.sleep(0.1)
            view = self.gateway.get(self.id)
        return view

    @staticmethod
    def _marks(ctx: DrillContext, fault: dict[str, Any]) -> None:
        fig = fault.get("figures", {})
        names = {m.name for m in ctx.markers}
        if fig.get("first_affected_at") and "detected" not in names:
            ctx.mark("detected", "first request the fault hit", at=fig["first_affected_at"])
        if fig.get("carried_after_s") is not None and "recovered" not in names:
            at = float(fault["started_at"]) + float(fig["carried_after_s"])
            ctx.mark("recovered", "another target carried a faulted request", at=at)

    def promote_standbys(self, ctx: DrillContext) -> None:
        """Warm standbys outside the drained region, checked and timed as a promotion
        would be (a rehearsal: nothing is promoted)."""
        from drkit.drills.standby import rehearse_promotions

        if self.region is None or self.state_dir is None:
            return
        stores = list(self.plan.vector_stores)
        promos = rehearse_promotions(stores, self.region.region, self.state_dir)
        ctx.note("standby_promotions", promos)
        if promos:
            ctx.metric("promotion_rto_s", max(p["promotion_rto_s"] for p in promos))
            ctx.metric("standbys_ready", sum(1 for p in promos if p["ok"]))
            bad = [p for p in promos if not p["ok"]]
            if bad:
                raise DrillError(
                    f"standby of {bad[0]['component']} is not ready to promote: "
                    f"{bad[0].get('problem')}"
                )

    # --- verify ---

    def per_route(self) -> dict[str, dict[str, Any]]:
        """Each drained route's figures, from the gateway's final view."""
        views = self.final.get("routes") or [self.final]
        return {str(v.get("route")): v.get("figures") or {} for v in views}

    def _measured(self, ctx: DrillContext) -> None:
        """The gateway's figures of the real traffic as the journal's metrics: the drill's
        (every route summed) and, in a regional exercise, each route's."""
        fig = self.final.get("figures") or {}
        ctx.note("figures", fig)
        ctx.metric("fraction", self.options.fraction)
        for key in ("requests", "affected", "carried", "client_visible_errors"):
            ctx.metric(key, float(fig.get(key) or 0))
        for key in ("share", "error_rate", "added_p99_s", "carried_after_s", "p99_other_s"):
            if fig.get(key) is not None:
                ctx.metric(key, round(float(fig[key]), 4))
        ctx.metric("processes", float(self.final.get("processes", 1)))
        if self.region is not None:
            routes = self.per_route()
            ctx.note("route_figures", routes)
            for name, rf in routes.items():
                for key in _ROUTE_FIGURES:
                    if rf.get(key) is not None:
                        ctx.metric(f"route.{name}.{key}", round(float(rf[key]), 4))
        ctx.record_rpo(0.0, "serving is stateless: no data at risk")

    def figures(self, ctx: DrillContext) -> bool:
        routes = self.per_route()
        limit = self.plan.testing.live_limits.max_error_rate
        for d in self.drained:
            fig = routes.get(d.route.name) or {}
            on = f" on route {d.route.name}" if len(self.drained) > 1 else ""
            if not fig.get("requests"):
                raise DrillError(
                    f"no real request reached the route{on} while the fault was on: "
                    "nothing was measured"
                )
            if not fig.get("affected"):
                raise DrillError(f"the fault hit none of {fig['requests']} requests{on}")
            rate = float(fig.get("error_rate") or 0.0)
            if rate > limit:
                raise DrillError(
                    f"{fig['client_visible_errors']} client-visible errors in "
                    f"{fig['requests']} requests{on} ({rate:.2%}, limit {limit:.2%})"
                )
        return True

    # --- rollback ---

    def lift(self, ctx: DrillContext) -> None:
        if not self.fault:
            return
        try:
            view = self.gateway.lift(self.id)
        except LiveFaultRefused as exc:
            if exc.status != 404:
                raise
            return
        ctx.note("why", view.get("why"))
        ctx.mark("lifted", str(view.get("why")), at=float(view.get("lifted_at") or time.time()))

    def confirm(self, ctx: DrillContext) -> bool:
        if not self.fault:
            return True
        view = self.gateway.targets()
        left = [f for f in view.get("live_faults", []) if f.get("drill") == self.id]
        if left:
            raise DrillError(
                f"the gateway still shows the fault of {self.id} on route "
                + ", ".join(str(f.get("route")) for f in left)
            )
        fault = self._all_lifted(self.gateway.get(self.id))
        applying = int(fault.get("applying") or 0)
        if applying:
            raise DrillError(
                f"{applying} other gateway process(es) still apply the fault of {self.id} "
                f"{SHARED_LIFT_S:g}s after its lift",
                hint="their own timers end it by its lease; check their link to the shared state",
            )
        return True

    def failback(self, ctx: DrillContext) -> None:
        """Time from the lift until the faulted targets answer real requests again, per
        route (``failback_s``: until the last route is back)."""
        if not self.fault:
            return
        lifted = time.time()
        before = {
            d.route.name: self.gateway.ok_attempts(d.route.name, d.targets) for d in self.drained
        }
        waiting = {d.route.name: d for d in self.drained}
        limit = self.plan.serving.gateway.health.probe_every * 2 + 5.0
        back: dict[str, float] = {}
        while waiting and time.time() - lifted < limit:
            for name, d in list(waiting.items()):
                if self.gateway.ok_attempts(name, d.targets) > before[name]:
                    back[name] = round(time.time() - lifted, 3)
                    del waiting[name]
            if waiting:
                self.sleep(0.05)
        if self.region is not None:
            for name, took in back.items():
                ctx.metric(f"route.{name}.failback_s", took)
        if waiting:
            late = ", ".join(t for d in waiting.values() for t in d.targets)
            ctx.note("failback", f"no real request reached {late} in {limit:g}s")
        elif back:
            ctx.metric("failback_s", max(back.values()))

    def drill(self) -> Drill:
        tiers = [self.plan.tiers[d.route.tier] for d in self.drained]
        pct = f"{self.options.fraction:.2%}"
        targets = ", ".join(self.targets)
        what = ""
        if self.region is not None:
            what = f"region {self.region.region} drained: "
            if self.region.not_affected:
                what += f"(not affected: {', '.join(self.region.not_affected)}) "
        recovery: tuple[Step, ...] = (
            Step(
                "hold the fault, renewing its lease; the gateway watches the stop conditions",
                self.hold,
            ),
        )
        if self.region is not None and any(
            vs.standby is not None and vs.standby.region != self.region.region
            for vs in self.plan.vector_stores
        ):
            step = Step("promote the other region's standbys (rehearsal)", self.promote_standbys)
            recovery = (step, *recovery)
        noun = "route" if len(self.drained) == 1 else "routes"
        return Drill(
            scenario=self.scenario,
            description=f"live: {what}{pct} of {noun} {self.routes}'s real requests find "
            f"{targets} failed for {format_duration(self.options.duration_s)} on "
            f"{self.gateway.url} (owner {self.options.owner})",
            steady_state=(
                Step(
                    f"the gateway serves {noun} {self.routes} with a healthy secondary", self.steady
                ),
            ),
            fault=(Step(f"install the live fault on {targets} ({pct})", self.install),),
            recovery=recovery,
            verify=(Step("figures of the real traffic within the limits", self.figures),),
            rollback=(
                Step("lift the live fault", self.lift),
                Step("the gateway shows no fault of this drill", self.confirm),
                Step("traffic returns to the faulted targets (measured)", self.failback),
            ),
            rto_target_s=min(t.rto for t in tiers),
            rpo_target_s=min(t.rpo for t in tiers),
            id=self.id,
        )


def build_live(
    plan: Plan,
    route: Route,
    options: LiveOptions,
    *,
    record: Callable[[str, str, str, dict[str, Any]], None] | None = None,
) -> Drill:
    """provider-outage ``--live``: check everything that can be checked first (exit 2),
    then the drill faulting ``route``'s primary (or ``options.targets``)."""
    drained = (Drained(route, options.targets or (route.targets[0].name,)),)
    gateway = LiveGateway(options.url, options.admin_key)
    preflight(plan, drained, options, gateway)
    return LiveDrill(plan, drained, options, gateway, record=record).drill()


def build_region_live(
    plan: Plan,
    options: LiveOptions,
    *,
    region: str | None,
    subject: str | None,
    state_dir: Path | None = None,
    record: Callable[[str, str, str, dict[str, Any]], None] | None = None,
) -> Drill:
    """region-outage ``--live``: drain ``region`` on every route with a target there
    (``subject``: that route alone); every route is checked before anything is installed."""
    if options.targets:
        raise UsageError(
            "--target is for provider-outage: region-outage --live drains every target "
            "of the region",
            hint="--subject ROUTE drains the region on one route only",
        )
    drain = region_drain(plan, region, subject)
    gateway = LiveGateway(options.url, options.admin_key)
    preflight(plan, drain.routes, options, gateway)
    return LiveDrill(
        plan,
        drain.routes,
        options,
        gateway,
        "region-outage",
        record=record,
        region=drain,
        state_dir=state_dir,
    ).drill()


__all__: Sequence[str] = (
    "EVENT_STARTED",
    "LIVE_METRIC",
    "REGION_METRIC",
    "LiveDrill",
    "abort",
    "build_live",
    "build_region_live",
)
