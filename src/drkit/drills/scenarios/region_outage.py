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
from typing import TYPE_CHECKING, Any

from drkit.connectors.objectstore.faulty import Faulty
from drkit.connectors.vectorstore.transfer import temp_name
from drkit.drills.data import component_path, file_components
from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.scenarios.provider_outage import pick_route, recovery_wait
from drkit.drills.stack import RepositorySession, Stack
from drkit.drills.vectors import Engines, snapshotted_collections, vector_components
from drkit.errors import DrillError, DrkitError, SnapshotNotFound, UsageError
from drkit.plan.models import Component, Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import restore_collection, vector_snapshots
from drkit.repository import restore

if TYPE_CHECKING:  # the rehearsal runs the gateway: it needs the gateway extra, listing does not
    from drkit.drills.rehearsal import Rehearsal

PROBES_AFTER = 3


def unsupported(plan: Plan) -> str | None:
    if not plan.serving.routes and not file_components(plan) and not vector_components(plan):
        return "the plan has neither serving routes, nor vector stores, nor components with a path"
    return None


def build(stack: Stack, options: DrillOptions) -> Drill:
    plan = stack.plan
    region = options.region or plan.repositories.primary.region
    route = pick_route(plan, options.subject) if plan.serving.routes else None
    comps = file_components(plan)
    stores = vector_components(plan)
    engines = Engines()
    #: scratch collections restored into: (engine URL, collection, records expected)
    scratch_collections: list[tuple[str, str, int]] = []
    lost_repos = [r.name for r in stack.repositories() if r.region == region]
    lost_targets = [t.name for t in route.targets if t.region == region] if route else []
    known = {r.region for r in stack.repositories()}
    if route is not None:
        known |= {t.region for t in route.targets}
    if region not in known:
        raise UsageError(
            f"nothing of plan {plan.name!r} is in region {region!r}",
            hint="regions in the plan: " + ", ".join(sorted(known)),
        )
    tiers = [plan.tiers[c.tier] for c in [*stores, *comps] if c.tier] + (
        [plan.tiers[route.tier]] if route else []
    )
    rehearsal: Rehearsal | None = None
    if route is not None:
        from drkit.drills.rehearsal import Rehearsal

        rehearsal = Rehearsal(plan, route, seed=options.seed)
    work = stack.scratch / f"region-outage-{region}-{secrets.token_hex(4)}"
    found: dict[str, Any] = {}

    def start(ctx: DrillContext) -> None:
        if rehearsal is None:
            return
        rehearsal.start()
        a = rehearsal.ask("steady state")
        if not a.ok:
            raise DrillError(f"the route does not answer before the fault: {a}")

    def have_snapshots(ctx: DrillContext) -> None:
        if not comps and not stores:
            return
        with stack.open_repository(plan.repositories.primary.name) as repo:
            missing = [c.name for c in comps if not repo.snapshots(c.name)]
            missing += [v.name for v in stores if not vector_snapshots(repo, v.name)]
        if missing:
            raise DrillError(f"no snapshot in the primary repository of: {', '.join(missing)}")

    def lose_region(ctx: DrillContext) -> None:
        for name in lost_repos:
            stack.wrappers[name] = lambda store: Faulty(store, unreachable=True)
        if rehearsal is not None:
            for t in lost_targets:
                rehearsal.fail(t, {"kind": "refuse"})
        ctx.note("repositories", lost_repos)
        ctx.note("targets", lost_targets)

    def serve_elsewhere(ctx: DrillContext) -> None:
        if rehearsal is None or route is None:
            return
        survivors = [t.name for t in route.targets if t.region != region]
        if not survivors:
            raise DrillError(
                f"no target outside region {region!r} for route {route.name!r}: "
                "serving cannot leave the lost region"
            )
        fault_at = ctx.marker("fault_injected") or 0.0
        deadline = time.time() + recovery_wait(route)
        while True:
            a = rehearsal.ask("region lost")
            if a.ok and a.target in survivors:
                found["serving_at"] = a.at
                ctx.metric("serving_rto_s", round(a.at - fault_at, 3))
                break
            if time.time() > deadline:
                raise DrillError(f"no good answer from {', '.join(survivors)} in time")
        ev = rehearsal.first_event("failover", "ejection", since=fault_at)
        if ev is not None:
            found.setdefault("detected", ev)

    def restore_elsewhere(ctx: DrillContext) -> None:
        if not comps and not stores:
            return
        fault_at = ctx.marker("fault_injected") or 0.0
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        tests: list[dict[str, Any]] = []
        started = time.time()
        repos = stack.session()  # each surviving repository is opened once
        try:
            for vs in stores:
                tests += restore_vectors(vs, repos, fault_at, found)
            for comp in comps:
                tests.append(restore_one(comp, repos, fault_at, found))
        finally:
            repos.close()
        oldest = max((t["age_s"] for t in tests), default=0.0)
        ctx.metric("data_rto_s", round(time.time() - fault_at, 3))
        ctx.metric("restore_s", round(time.time() - started, 3))
        ctx.metric("components_restored", len({t["component"] for t in tests}))
        ctx.metric("collections_restored", sum(1 for t in tests if "collection" in t))
        ctx.metric("records_restored", sum(int(t.get("records", 0)) for t in tests))
        ctx.note("restore_tests", tests)
        ctx.record_rpo(oldest, "age of the oldest snapshot restored outside the region")

    def restore_one(
        comp: Component, repos: RepositorySession, fault_at: float, found: dict[str, Any]
    ) -> dict[str, Any]:
        """Restore ``comp`` from the first repository that can; primary first."""
        tried: list[str] = []
        for model in stack.repositories():
            try:
                repo = repos.get(model.name)
                snap = repo.find_snapshot("latest", comp.name)
                result = restore(repo, snap, work / comp.name)
            except SnapshotNotFound:
                tried.append(f"{model.name}: no snapshot")
                continue
            except DrkitError as exc:
                found.setdefault("detected", time.time())
                tried.append(f"{model.name}: {type(exc).__name__}")
                continue
            return {
                "component": comp.name,
                "snapshot": snap.id,
                "repository": model.name,
                "duration_s": result.duration_s,
                "age_s": max(0.0, fault_at - snap.datetime.timestamp()),
            }
        raise DrillError(
            f"no replica outside region {region!r} holds {comp.name!r} (tried {'; '.join(tried)})"
        )

    def restore_vectors(
        vs: VectorStoreModel, repos: RepositorySession, fault_at: float, found: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Restore each collection of ``vs`` from the first repository that holds it,
        into a scratch collection of its engine."""
        tried: list[str] = []
        for model in stack.repositories():
            try:
                repo = repos.get(model.name)
                names = list(vs.collections) or snapshotted_collections(repo, vs.name)
                snaps = {n: vector_snapshots(repo, vs.name, n) for n in names}
            except DrkitError as exc:
                found.setdefault("detected", time.time())
                tried.append(f"{model.name}: {type(exc).__name__}")
                continue
            if not names or not all(snaps.values()):
                tried.append(f"{model.name}: no snapshot")
                continue
            store = engines.get(str(vs.engine))
            out = []
            for name in names:
                snap = snaps[name][-1]
                scratch = temp_name(f"dr_{name}")
                expected = int(snap.meta.get("records", -1))
                scratch_collections.append((str(vs.engine), scratch, expected))
                rep = restore_collection(repo, snap, store, scratch)
                out.append(
                    {
                        "component": vs.name,
                        "collection": name,
                        "snapshot": snap.id,
                        "repository": model.name,
                        "duration_s": rep.duration_s,
                        "records": rep.records,
                        "scratch": scratch,
                        "age_s": max(0.0, fault_at - snap.datetime.timestamp()),
                    }
                )
            return out
        raise DrillError(
            f"no replica outside region {region!r} holds {vs.name!r} (tried {'; '.join(tried)})"
        )

    def mark(ctx: DrillContext) -> None:
        if "detected" in found:
            ctx.mark("detected", "first failure against the lost region", at=found["detected"])
        ctx.mark("recovered", "serving and data back outside the lost region")

    def still_serving(ctx: DrillContext) -> None:
        if rehearsal is None or route is None:
            return
        bad = [a for a in (rehearsal.ask("after") for _ in range(PROBES_AFTER)) if not a.ok]
        fault_at = ctx.marker("fault_injected") or 0.0
        errors = sum(1 for a in rehearsal.answers if a.at >= fault_at and not a.ok)
        ctx.metric("client_visible_errors", errors)
        if bad:
            raise DrillError(f"{len(bad)} of {PROBES_AFTER} answers failed after the failover")

    def restored_whole(ctx: DrillContext) -> None:
        for url, scratch, expected in scratch_collections:
            got = engines.get(url).count(scratch)
            if got != expected:
                raise DrillError(f"{scratch}: {got} records restored, the snapshot has {expected}")
        for comp in comps:
            got = sum(1 for p in (work / comp.name).rglob("*") if p.is_file())
            if got == 0 and any(component_path(plan, comp).iterdir()):
                raise DrillError(f"{comp.name}: restored nothing")

    def undo(ctx: DrillContext) -> None:
        for name in lost_repos:
            stack.wrappers.pop(name, None)
        if rehearsal is not None and rehearsal.sims:
            rehearsal.clear()

    def remove_restored() -> None:
        shutil.rmtree(work, True)
        try:
            for url, scratch, _ in scratch_collections:
                engines.get(url).drop(scratch, missing_ok=True)
        finally:
            engines.close()

    return Drill(
        scenario="region-outage",
        description=f"region {region!r} lost: targets {lost_targets or 'none'}, "
        f"repositories {lost_repos or 'none'} unreachable",
        steady_state=(
            Step("route answers" if route else "no serving route", start),
            Step("primary repository holds every component", have_snapshots),
        ),
        fault=(Step(f"region {region} unreachable", lose_region),),
        recovery=(
            Step("serving moves to another region", serve_elsewhere),
            Step("restore every component from outside the region", restore_elsewhere),
            Step("service and data back", mark),
        ),
        verify=(
            Step("answers keep coming from the surviving region", still_serving),
            Step("restored data is complete", restored_whole),
        ),
        rollback=(
            Step("bring the region back", undo),
            Step("stop the rehearsal", lambda ctx: rehearsal.stop() if rehearsal else None),
            Step("remove restored data", lambda ctx: remove_restored()),
        ),
        rto_target_s=min((t.rto for t in tiers), default=None),
        rpo_target_s=min((t.rpo for t in tiers), default=None),
    )


SCENARIO = Scenario(
    name="region-outage",
    summary="every target and repository of one region is unreachable; serving and "
    "restores move to the other region",
    cadence="regional_failover",
    unsupported=unsupported,
    build=build,
)
