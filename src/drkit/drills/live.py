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

Only httpx here: the drill is a client of the gateway, never a part of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from drkit.drills.engine import Drill, DrillContext, Step, new_drill_id
from drkit.drills.live_options import LiveOptions, check_limits
from drkit.errors import DrillError, InputError, LiveFaultRefused, UsageError
from drkit.plan.models import Plan, Route
from drkit.types import Secret, format_duration

#: event kind in drkit's state when a live fault was installed (``drill abort`` reads it)
EVENT_STARTED = "drill.live_fault"
#: a journal metric set to 1 by live drills: only such a region-outage run counts as the
#: regional failover exercise (``testing.regional_failover_every``)
LIVE_METRIC = "live"
#: one sample of the gateway's attempts counter in the Prometheus text format
_ATTEMPTS = re.compile(r"^drkit_gateway_attempts_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


class LiveGateway:
    """The admin API of one running gateway."""

    def __init__(self, url: str, admin_key: Secret, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._key = admin_key
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = httpx.request(
                method,
                self.url + path,
                json=body,
                headers={"authorization": f"Bearer {self._key.reveal()}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise DrillError(
                f"cannot reach the gateway at {self.url}: {type(exc).__name__}",
                hint="check --live URL and that `drkit gateway serve` runs there",
            ) from exc
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            message = err.get("message") if isinstance(err, dict) else None
            if not isinstance(message, str):
                message = f"HTTP {r.status_code} from {self.url}{path}"
            hint = err.get("hint") if isinstance(err, dict) else None
            raise LiveFaultRefused(message, status=r.status_code, hint=hint)
        return data

    def targets(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/admin/targets")
        return out

    def faults(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/admin/live-faults")["live_faults"]
        return out

    def install(self, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/admin/live-faults", spec)
        return out

    def renew(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", f"/admin/live-faults/{drill}/renew", {})
        return out

    def get(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/admin/live-faults/{drill}")
        return out

    def lift(self, drill: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("DELETE", f"/admin/live-faults/{drill}")
        return out

    def ok_attempts(self, route: str, targets: tuple[str, ...]) -> float:
        """Upstream attempts of ``route`` that ``targets`` answered, from ``GET /metrics``."""
        try:
            text = httpx.get(self.url + "/metrics", timeout=self.timeout).text
        except httpx.HTTPError as exc:
            raise DrillError(f"cannot read {self.url}/metrics: {type(exc).__name__}") from exc
        total = 0.0
        for line in text.splitlines():
            m = _ATTEMPTS.match(line)
            if m is None:
                continue
            labels = dict(_LABEL.findall(m["labels"]))
            if (
                labels.get("route") == route
                and labels.get("target") in targets
                and labels.get("result") == "ok"
            ):
                total += float(m["value"])
        return total


def as_input_error(exc: LiveFaultRefused, url: str) -> InputError:
    """A refusal before the drill starts: bad input or a rail, exit 2 with a hint."""
    if exc.status == 401:
        return UsageError(
            f"the gateway at {url} refused the admin key: {exc}",
            hint="export the gateway's admin key in serving.auth.admin_keys_env",
        )
    return UsageError(f"the gateway at {url} refuses the live drill: {exc}", hint=exc.hint)


def preflight(
    plan: Plan, route: Route, options: LiveOptions, gateway: LiveGateway
) -> tuple[str, ...]:
    """Check input and rails before the drill's journal starts; the targets to fault.

    UsageError (exit 2) for a fraction or duration out of bounds, an unknown target, a
    wrong admin key, a route without a healthy secondary, another live drill on the route.
    """
    check_limits(options, plan.testing.live_limits)
    names = [t.name for t in route.targets]
    targets = options.targets or (route.targets[0].name,)
    for t in targets:
        if t not in names:
            raise UsageError(
                f"route {route.name} has no target {t!r}", hint="its targets: " + ", ".join(names)
            )
    try:
        view = gateway.targets()
    except LiveFaultRefused as exc:
        raise as_input_error(exc, gateway.url) from None
    except DrillError as exc:
        raise UsageError(str(exc), hint=exc.hint) from None
    for f in view.get("live_faults", []):
        if f.get("route") == route.name:
            raise UsageError(
                f"live drill {f.get('drill')} ({f.get('owner')}) is already running on "
                f"route {route.name}",
                hint=f"wait for it, or `drkit drill abort {f.get('drill')}`",
            )
    state = {t["name"]: t for t in view.get("targets", [])}
    missing = [t for t in targets if t not in state]
    if missing:
        raise UsageError(
            f"the gateway at {gateway.url} has no target {missing[0]!r}",
            hint="is it serving this plan? (GET /admin/targets)",
        )
    healthy = [n for n in names if n not in targets and state.get(n, {}).get("state") == "healthy"]
    if not healthy:
        raise UsageError(
            f"route {route.name} has no healthy secondary besides {', '.join(targets)} on "
            f"the gateway: a live fault would fail real clients",
            hint="bring a secondary back into service first (GET /admin/targets)",
        )
    return targets


@dataclass
class LiveDrill:
    """One live drill run: install, hold (renewing), measure, lift."""

    plan: Plan
    route: Route
    options: LiveOptions
    gateway: LiveGateway
    targets: tuple[str, ...]
    scenario: str = "provider-outage"
    id: str = ""
    #: records an event in drkit's state (kind, component, message, data)
    record: Callable[[str, str, str, dict[str, Any]], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    #: region-outage: the region drained, and where the standby ledgers are
    region: str | None = None
    state_dir: Path | None = None
    fault: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = new_drill_id(self.scenario)

    @property
    def lease_s(self) -> float:
        return self.options.lease_s or self.plan.testing.live_limits.lease

    # --- steady state ---

    def steady(self, ctx: DrillContext) -> bool:
        view = self.gateway.targets()
        state = {t["name"]: t["state"] for t in view["targets"]}
        ctx.note("targets", state)
        others = [
            t.name
            for t in self.route.targets
            if t.name not in self.targets and state.get(t.name) == "healthy"
        ]
        if not others:
            raise DrillError(f"route {self.route.name} has no healthy secondary")
        return True

    # --- fault ---

    def install(self, ctx: DrillContext) -> None:
        limits = self.plan.testing.live_limits
        spec = {
            "drill": self.id,
            "owner": self.options.owner,
            "route": self.route.name,
            "targets": list(self.targets),
            "fraction": self.options.fraction,
            "duration_s": self.options.duration_s,
            "lease_s": self.lease_s,
            "max_error_rate": limits.max_error_rate,
            "max_added_p99_s": limits.max_added_p99,
            "scenario": self.scenario,
        }
        self.fault = self.gateway.install(spec)
        ctx.mark("fault_injected", "live fault installed", at=float(self.fault["started_at"]))
        ctx.note("fault", {k: v for k, v in self.fault.items() if k != "figures"})
        if self.record is not None:
            self.record(
                EVENT_STARTED,
                self.id,
                f"live drill {self.id} ({self.options.owner}) faults {self.options.fraction:.2%} "
                f"of route {self.route.name} on {', '.join(self.targets)} at {self.gateway.url}",
                {
                    "drill": self.id,
                    "gateway": self.gateway.url,
                    "route": self.route.name,
                    "targets": list(self.targets),
                    "fraction": self.options.fraction,
                    "owner": self.options.owner,
                    "ends_at": self.fault["ends_at"],
                },
            )

    # --- recovery: hold the fault, renewing its lease ---

    def hold(self, ctx: DrillContext) -> bool:
        every = max(0.05, self.lease_s / 3)
        ends_at = float(self.fault["ends_at"])
        while True:
            left = ends_at - time.time()
            if left <= 0:
                break
            self.sleep(min(every, left))
            try:
                self.fault = self.gateway.renew(self.id)
            except LiveFaultRefused as exc:
                if exc.status != 410:
                    raise
                break  # lifted: by its duration, a stop condition or an abort
            self._marks(ctx, self.fault)
        self.final = self._settled()
        self._marks(ctx, self.final)
        self._measured(ctx, self.final.get("figures") or {})
        why = str(self.final.get("why") or "")
        ctx.note("lifted", why)
        if why.startswith("stop_condition"):
            raise DrillError(f"stop condition tripped, fault lifted: {why.split(': ', 1)[-1]}")
        if why == "aborted":
            raise DrillError("aborted (`drkit drill abort`): fault lifted")
        if why == "lease":
            raise DrillError("the gateway lifted the fault: its lease was not renewed in time")
        return True

    def _settled(self) -> dict[str, Any]:
        """The fault once the gateway lifted it (its end is the gateway's to make)."""
        deadline = time.time() + 2.0
        while True:
            view = self.gateway.get(self.id)
            if view["state"] == "lifted" or time.time() > deadline:
                break
            self.sleep(0.05)
        if view.get("processes", 1) > 1 or self.gateway_shared(view):
            self.sleep(0.3)  # the other processes leave their final figures as they lift
            view = self.gateway.get(self.id)
        return view

    @staticmethod
    def gateway_shared(view: dict[str, Any]) -> bool:
        return bool(view.get("shared"))

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
        promos = rehearse_promotions(list(self.plan.vector_stores), self.region, self.state_dir)
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

    def _measured(self, ctx: DrillContext, fig: dict[str, Any]) -> None:
        """The gateway's figures of the real traffic as the journal's metrics."""
        ctx.note("figures", fig)
        ctx.metric(LIVE_METRIC, 1.0)
        ctx.metric("fraction", self.options.fraction)
        for key in ("requests", "affected", "carried", "client_visible_errors"):
            ctx.metric(key, float(fig.get(key) or 0))
        for key in ("share", "error_rate", "added_p99_s", "carried_after_s", "p99_other_s"):
            if fig.get(key) is not None:
                ctx.metric(key, round(float(fig[key]), 4))
        ctx.metric("processes", float(self.final.get("processes", 1)))
        ctx.record_rpo(0.0, "serving is stateless: no data at risk")

    def figures(self, ctx: DrillContext) -> bool:
        fig = self.final.get("figures") or {}
        if not fig.get("requests"):
            raise DrillError(
                "no real request reached the route while the fault was on: nothing was measured"
            )
        if not fig.get("affected"):
            raise DrillError(f"the fault hit none of {fig['requests']} requests")
        limit = self.plan.testing.live_limits.max_error_rate
        rate = float(fig.get("error_rate") or 0.0)
        if rate > limit:
            raise DrillError(
                f"{fig['client_visible_errors']} client-visible errors in {fig['requests']} "
                f"requests ({rate:.2%}, limit {limit:.2%})"
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
            raise DrillError(f"the gateway still shows the fault of {self.id}")
        return True

    def failback(self, ctx: DrillContext) -> None:
        """Time from the lift until the faulted targets answer real requests again."""
        if not self.fault:
            return
        lifted = time.time()
        before = self.gateway.ok_attempts(self.route.name, self.targets)
        limit = self.plan.serving.gateway.health.probe_every * 2 + 5.0
        while time.time() - lifted < limit:
            if self.gateway.ok_attempts(self.route.name, self.targets) > before:
                ctx.metric("failback_s", round(time.time() - lifted, 3))
                return
            self.sleep(0.05)
        ctx.note("failback", f"no real request reached {', '.join(self.targets)} in {limit:g}s")

    def drill(self) -> Drill:
        tier = self.plan.tiers[self.route.tier]
        pct = f"{self.options.fraction:.2%}"
        targets = ", ".join(self.targets)
        what = f"region {self.region} drained: " if self.region else ""
        recovery: tuple[Step, ...] = (
            Step(
                "hold the fault, renewing its lease; the gateway watches the stop conditions",
                self.hold,
            ),
        )
        if self.region is not None and any(
            vs.standby is not None and vs.standby.region != self.region
            for vs in self.plan.vector_stores
        ):
            step = Step("promote the other region's standbys (rehearsal)", self.promote_standbys)
            recovery = (step, *recovery)
        return Drill(
            scenario=self.scenario,
            description=f"live: {what}{pct} of route {self.route.name!r}'s real requests find "
            f"{targets} failed for {format_duration(self.options.duration_s)} on "
            f"{self.gateway.url} (owner {self.options.owner})",
            steady_state=(
                Step("the gateway serves the route with a healthy secondary", self.steady),
            ),
            fault=(Step(f"install the live fault on {targets} ({pct})", self.install),),
            recovery=recovery,
            verify=(Step("figures of the real traffic within the limits", self.figures),),
            rollback=(
                Step("lift the live fault", self.lift),
                Step("the gateway shows no fault of this drill", self.confirm),
                Step("traffic returns to the faulted targets (measured)", self.failback),
            ),
            rto_target_s=tier.rto,
            rpo_target_s=tier.rpo,
            id=self.id,
        )


def build_live(
    plan: Plan,
    route: Route,
    options: LiveOptions,
    *,
    scenario: str = "provider-outage",
    region: str | None = None,
    state_dir: Path | None = None,
    record: Callable[[str, str, str, dict[str, Any]], None] | None = None,
) -> Drill:
    """Check everything that can be checked first (exit 2), then the drill to run.

    ``region`` (region-outage): every target of the route in that region is faulted."""
    if region is not None:
        in_region = tuple(t.name for t in route.targets if t.region == region)
        if not in_region:
            regions = sorted({t.region for t in route.targets})
            raise UsageError(
                f"route {route.name} has no target in region {region!r}",
                hint="its regions: " + ", ".join(regions),
            )
        options = replace(options, targets=in_region)
    gateway = LiveGateway(options.url, options.admin_key)
    targets = preflight(plan, route, options, gateway)
    return LiveDrill(
        plan,
        route,
        options,
        gateway,
        targets,
        scenario,
        record=record,
        region=region,
        state_dir=state_dir,
    ).drill()


def abort(url: str, admin_key: Secret, drill: str) -> dict[str, Any]:
    """Lift the fault of ``drill`` at ``url`` now; UsageError when it has none."""
    gateway = LiveGateway(url, admin_key)
    try:
        return gateway.lift(drill)
    except LiveFaultRefused as exc:
        raise as_input_error(exc, url) from None
