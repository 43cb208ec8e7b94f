"""``region-outage``: every target and every repository of one region becomes unreachable.

Serving moves to the route's targets in other regions (the rehearsal gateway, targets
of the lost region told to refuse connections); data moves to the replicas: every
component with a path, and every collection of every vector store, is restored from
the first repository outside the lost region that holds it (the lost region's
repositories are wrapped with ``Faulty(unreachable=True)``, so the drill's restore
logic meets them failing exactly as a dead endpoint would). File trees go to scratch;
collections into a scratch collection of the component's engine (standing in for the
surviving region's engine), dropped by the rollback. Measured: serving RTO, data RTO
(the restores), RTO = the later of the two, RPO = the age at the fault of the oldest
snapshot restored (writes after it exist only in the lost region).
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drkit.connectors.objectstore.faulty import Faulty
from drkit.drills.data import file_components
from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.scenarios.provider_outage import pick_route, recovery_wait
from drkit.drills.scenarios.regional_restore import RegionRestore, RestoredCopy
from drkit.drills.stack import Stack
from drkit.drills.vectors import vector_components
from drkit.errors import DrillError, UsageError
from drkit.plan.models import Component, Plan, Route
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import vector_snapshots

if TYPE_CHECKING:  # the rehearsal runs the gateway: it needs the gateway extra, listing does not
    from drkit.drills.rehearsal import Rehearsal

PROBES_AFTER = 3


def unsupported(plan: Plan) -> str | None:
    if not plan.serving.routes and not file_components(plan) and not vector_components(plan):
        return "the plan has neither serving routes, nor vector stores, nor components with a path"
    return None


@dataclass
class RegionOutage:
    """One run of the drill: what the region holds, the rehearsal, the restores.

    Serving steps use the rehearsal (``None`` without a serving route); data steps go
    through :class:`RegionRestore`. What steps hand on are typed fields here.
    """

    stack: Stack
    region: str
    route: Route | None
    rehearsal: Rehearsal | None
    data: RegionRestore
    comps: list[Component] = field(default_factory=list)
    stores: list[VectorStoreModel] = field(default_factory=list)
    #: the gateway's first failover/ejection after the fault
    serving_detected: float | None = None

    @property
    def plan(self) -> Plan:
        return self.stack.plan

    @property
    def lost_repos(self) -> list[str]:
        return [r.name for r in self.stack.repositories() if r.region == self.region]

    @property
    def lost_targets(self) -> list[str]:
        route = self.route
        return [t.name for t in route.targets if t.region == self.region] if route else []

    # --- steady state ---

    def start(self, ctx: DrillContext) -> None:
        if self.rehearsal is None:
            return
        self.rehearsal.start()
        a = self.rehearsal.ask("steady state")
        if not a.ok:
            raise DrillError(f"the route does not answer before the fault: {a}")

    def have_snapshots(self, ctx: DrillContext) -> None:
        if not self.comps and not self.stores:
            return
        with self.stack.open_repository(self.plan.repositories.primary.name) as repo:
            missing = [c.name for c in self.comps if not repo.snapshots(c.name)]
            missing += [v.name for v in self.stores if not vector_snapshots(repo, v.name)]
        if missing:
            raise DrillError(f"no snapshot in the primary repository of: {', '.join(missing)}")

    # --- fault ---

    def lose_region(self, ctx: DrillContext) -> None:
        for name in self.lost_repos:
            self.stack.wrappers[name] = lambda store: Faulty(store, unreachable=True)
        if self.rehearsal is not None:
            for t in self.lost_targets:
                self.rehearsal.fail(t, {"kind": "refuse"})
        ctx.note("repositories", self.lost_repos)
        ctx.note("targets", self.lost_targets)

    # --- recovery ---

    def serve_elsewhere(self, ctx: DrillContext) -> None:
        rehearsal, route = self.rehearsal, self.route
        if rehearsal is None or route is None:
            return
        survivors = [t.name for t in route.targets if t.region != self.region]
        if not survivors:
            raise DrillError(
                f"no target outside region {self.region!r} for route {route.name!r}: "
                "serving cannot leave the lost region"
            )
        fault_at = ctx.marker("fault_injected") or 0.0
        deadline = time.time() + recovery_wait(route)
        while True:
            a = rehearsal.ask("region lost")
            if a.ok and a.target in survivors:
                ctx.metric("serving_rto_s", round(a.at - fault_at, 3))
                break
            if time.time() > deadline:
                raise DrillError(f"no good answer from {', '.join(survivors)} in time")
        self.serving_detected = rehearsal.first_event("failover", "ejection", since=fault_at)

    def restore_elsewhere(self, ctx: DrillContext) -> None:
        if not self.comps and not self.stores:
            return
        fault_at = ctx.marker("fault_injected") or 0.0
        work = self.data.work
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        copies: list[RestoredCopy] = []
        started = time.time()
        repos = self.stack.session()  # each surviving repository is opened once
        try:
            for vs in self.stores:
                copies += self.data.vectors(vs, repos, fault_at)
            for comp in self.comps:
                copies.append(self.data.files(comp, repos, fault_at))
        finally:
            repos.close()
        oldest = max((c.age_s for c in copies), default=0.0)
        ctx.metric("data_rto_s", round(time.time() - fault_at, 3))
        ctx.metric("restore_s", round(time.time() - started, 3))
        ctx.metric("components_restored", len({c.component for c in copies}))
        ctx.metric("collections_restored", sum(1 for c in copies if c.collection is not None))
        ctx.metric("records_restored", sum(c.records or 0 for c in copies))
        ctx.note("restore_tests", [c.to_json() for c in copies])
        self.promote_standbys(ctx)
        ctx.record_rpo(oldest, "age of the oldest snapshot restored outside the region")

    def promote_standbys(self, ctx: DrillContext) -> None:
        """Warm standbys outside the region: the promotion's RTO next to the restore's."""
        from drkit.drills.standby import rehearse_promotions

        promos = rehearse_promotions(self.stores, self.region, self.stack.scratch.parent)
        if promos:
            ctx.note("standby_promotions", promos)
            ctx.metric("promotion_rto_s", max(p["promotion_rto_s"] for p in promos))
            ctx.metric("standbys_ready", sum(1 for p in promos if p["ok"]))

    def mark(self, ctx: DrillContext) -> None:
        # the first failure seen: the gateway's failover, else a lost repository failing
        detected = self.serving_detected
        if detected is None:
            detected = self.data.detected
        if detected is not None:
            ctx.mark("detected", "first failure against the lost region", at=detected)
        ctx.mark("recovered", "serving and data back outside the lost region")

    # --- verify ---

    def still_serving(self, ctx: DrillContext) -> None:
        rehearsal = self.rehearsal
        if rehearsal is None or self.route is None:
            return
        bad = [a for a in (rehearsal.ask("after") for _ in range(PROBES_AFTER)) if not a.ok]
        fault_at = ctx.marker("fault_injected") or 0.0
        errors = sum(1 for a in rehearsal.answers if a.at >= fault_at and not a.ok)
        ctx.metric("client_visible_errors", errors)
        if bad:
            raise DrillError(f"{len(bad)} of {PROBES_AFTER} answers failed after the failover")

    def restored_whole(self, ctx: DrillContext) -> None:
        self.data.check_whole(self.comps)

    # --- rollback ---

    def undo(self, ctx: DrillContext) -> None:
        for name in self.lost_repos:
            self.stack.wrappers.pop(name, None)
        if self.rehearsal is not None and self.rehearsal.sims:
            self.rehearsal.clear()

    def stop(self, ctx: DrillContext) -> None:
        if self.rehearsal is not None:
            self.rehearsal.stop()

    def remove_restored(self, ctx: DrillContext) -> None:
        self.data.remove()

    def drill(self) -> Drill:
        plan, route, region = self.plan, self.route, self.region
        tiers = [plan.tiers[c.tier] for c in [*self.stores, *self.comps] if c.tier] + (
            [plan.tiers[route.tier]] if route else []
        )
        return Drill(
            scenario="region-outage",
            description=f"region {region!r} lost: targets {self.lost_targets or 'none'}, "
            f"repositories {self.lost_repos or 'none'} unreachable",
            steady_state=(
                Step("route answers" if route else "no serving route", self.start),
                Step("primary repository holds every component", self.have_snapshots),
            ),
            fault=(Step(f"region {region} unreachable", self.lose_region),),
            recovery=(
                Step("serving moves to another region", self.serve_elsewhere),
                Step("restore every component from outside the region", self.restore_elsewhere),
                Step("service and data back", self.mark),
            ),
            verify=(
                Step("answers keep coming from the surviving region", self.still_serving),
                Step("restored data is complete", self.restored_whole),
            ),
            rollback=(
                Step("bring the region back", self.undo),
                Step("stop the rehearsal", self.stop),
                Step("remove restored data", self.remove_restored),
            ),
            rto_target_s=min((t.rto for t in tiers), default=None),
            rpo_target_s=min((t.rpo for t in tiers), default=None),
        )


def build(stack: Stack, options: DrillOptions) -> Drill:
    plan = stack.plan
    region = options.region or plan.repositories.primary.region
    route = pick_route(plan, options.subject) if plan.serving.routes else None
    if options.gateway is not None:  # the annual exercise: real traffic leaves the region
        from drkit.drills.live import build_region_live
        from drkit.drills.scenarios.provider_outage import state_recorder

        return build_region_live(
            plan,
            options.gateway,
            region=options.region,
            subject=options.subject,
            state_dir=stack.scratch.parent,
            record=state_recorder(plan),
        )
    known = {r.region for r in stack.repositories()}
    if route is not None:
        known |= {t.region for t in route.targets}
    if region not in known:
        raise UsageError(
            f"nothing of plan {plan.name!r} is in region {region!r}",
            hint="regions in the plan: " + ", ".join(sorted(known)),
        )
    rehearsal: Rehearsal | None = None
    if route is not None:
        # the rehearsal runs the gateway: imported here, so that listing scenarios and the
        # layers below work without the gateway extra (docs/architecture.md)
        from drkit.drills.rehearsal import Rehearsal

        rehearsal = Rehearsal(plan, route, seed=options.seed)
    work = stack.scratch / f"region-outage-{region}-{secrets.token_hex(4)}"
    return RegionOutage(
        stack=stack,
        region=region,
        route=route,
        rehearsal=rehearsal,
        data=RegionRestore(stack, region, work),
        comps=file_components(plan),
        stores=vector_components(plan),
    ).drill()


SCENARIO = Scenario(
    name="region-outage",
    summary="every target and repository of one region is unreachable; serving and "
    "restores move to the other region",
    cadence="regional_failover",
    unsupported=unsupported,
    build=build,
)
