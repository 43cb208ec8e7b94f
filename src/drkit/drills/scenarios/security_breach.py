"""``security-breach``: a compromised key tampers with a dataset and a vector collection.

The run, in sandboxes as ``data-corruption`` (a drill never damages what it protects):

1. steady state: each drilled component (default: the plan's first vector collection and
   its first dataset, else its first data components; ``--subject`` picks one) is
   readable and has a *verified* snapshot, taken before the breach, and is copied into a
   sandbox; a seeded "compromised" password is added to the primary repository
   (``repo key add``) and opens it, as the attacker's would;
2. fault: with that key in hand the attacker deletes and alters a seeded share of each
   sandbox (files, or records and vectors);
3. recovery: *identify* the affected components by fingerprint against their newest
   verified snapshots (time to identify = detection); *contain*: a new repository key is
   added and the compromised one removed (``repo key remove``), and opening with it must
   then fail; the gateway's client keys are rotated (a gateway with the new key set
   refuses the compromised client key and accepts the new one); *restore* each component
   from its newest verified snapshot before the breach (RTO); *tell*: an incident is
   opened as a draft (never public from a drill) with a customer notice listing the
   affected data and the models trained on it (the plan's ``models[].trained_on``);
4. verify: each sandbox equals its snapshot; the compromised key opens nothing;
5. rollback: the drill's keys are removed, the sandboxes dropped, the drill's incident
   discarded (it stays readable in the war room).

Measured: ``identify_s``, ``contain_s``, ``restore_s`` (each from the breach), the records
and files affected, and as RPO the writes since the snapshots that the restore loses.
The drill's keys use the stack's key-stretching parameters; the operator's password is
never touched.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from dataclasses import dataclass, field

from drkit.drills.data import file_components
from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.scenarios.data_corruption import _FileCase, _Totals, _VectorCase
from drkit.drills.stack import Stack
from drkit.drills.vectors import Engines, collections_of, vector_components
from drkit.errors import DrillError, UsageError, WrongPassword
from drkit.plan.models import Component, Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.repository import Repository

Case = _FileCase | _VectorCase


def unsupported(plan: Plan) -> str | None:
    if not file_components(plan) and not vector_components(plan):
        return "the plan has no vector store and no dataset or other component with a path"
    return None


def pick(plan: Plan, subject: str | None) -> list[Component]:
    """``subject``, else the first vector store and the first dataset (or data component)."""
    vectors: list[Component] = list(vector_components(plan))
    files = file_components(plan)
    if subject is not None:
        for c in [*vectors, *files]:
            if c.name == subject:
                return [c]
        raise UsageError(
            f"the plan has no vector store or component with a path named {subject!r}",
            hint="one of: " + ", ".join(c.name for c in [*vectors, *files]),
        )
    datasets = [c for c in files if any(d.name == c.name for d in plan.datasets)] or files
    return vectors[:1] + datasets[:1]


@dataclass
class SecurityBreach:
    stack: Stack
    comps: list[Component]
    seed: int
    cases: list[Case] = field(default_factory=list)
    engines: Engines = field(default_factory=Engines)
    compromised: str = ""  # the attacker's repository password (drill-made, never logged)
    compromised_id: str = ""
    replacement_id: str = ""
    incident: str = ""
    affected: dict[str, int] = field(default_factory=dict)  # label -> records/files hit

    def __post_init__(self) -> None:
        plan = self.stack.plan
        self.primary = plan.repositories.primary.name
        self.repos = self.stack.session()
        self.work = self.stack.scratch / f"security-breach-{secrets.token_hex(4)}"
        for comp in self.comps:
            if isinstance(comp, VectorStoreModel):
                names = list(comp.collections) or collections_of(
                    comp, self.engines.get(str(comp.engine))
                )
                self.cases.append(_VectorCase(comp, names[0], self.engines))
            else:
                self.cases.append(_FileCase(plan, comp, self.work))
        self.totals = _Totals(len(self.cases))

    @property
    def repo(self) -> Repository:
        return self.repos.get(self.primary)

    def _open_with(self, password: str) -> Repository:
        from drkit.connectors.objectstore.registry import open_store

        model = self.stack.plan.repository(self.primary)
        return Repository.open(open_store(model.url), password)

    # --- steady state ------------------------------------------------------------------

    def key_leaks(self, ctx: DrillContext) -> None:
        self.compromised = secrets.token_urlsafe(24)
        self.compromised_id = self.repo.add_key(self.compromised, kdf=self.stack.kdf)
        with self._open_with(self.compromised):
            pass  # the attacker's key opens the repository
        ctx.note("compromised_key", self.compromised_id[:12])

    # --- fault -------------------------------------------------------------------------

    def tamper(self, case: Case) -> Step:
        return Step(f"the compromised key tampers with {case.label}", case.corrupt)

    # --- recovery ----------------------------------------------------------------------

    def identify(self, ctx: DrillContext) -> None:
        for case in self.cases:
            damaged = case.detect(ctx, self.repos, self.primary)
            if not damaged:
                raise DrillError(
                    f"{case.label}: the fingerprint shows no tampering: the breach went undetected"
                )
            self.affected[case.label] = damaged
        ctx.mark("detected", "affected data identified by fingerprint: " + self._affected())
        ctx.metric("identify_s", _since_fault(ctx))
        ctx.metric("records_affected", sum(self.affected.values()))
        ctx.note("affected", dict(self.affected))

    def rotate_repository_key(self, ctx: DrillContext) -> None:
        replacement = secrets.token_urlsafe(24)
        self.replacement_id = self.repo.add_key(replacement, kdf=self.stack.kdf)
        with self._open_with(replacement):
            pass
        self.repo.remove_key(self.compromised_id)
        removed, self.compromised_id = self.compromised_id, ""
        try:
            with self._open_with(self.compromised):
                pass
        except WrongPassword:
            pass
        else:
            raise DrillError("the compromised key still opens the repository after its removal")
        ctx.note("removed_key", removed[:12])
        ctx.note("new_key", self.replacement_id[:12])

    def rotate_client_keys(self, ctx: DrillContext) -> None:
        if not self.stack.plan.serving.routes:
            ctx.note("gateway", "the plan serves no routes: no client keys to rotate")
        else:
            self.client_old, self.client_new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            before = asyncio.run(_auth_answers([self.client_old], [self.client_old]))
            after = asyncio.run(
                _auth_answers([self.client_new], [self.client_old, self.client_new])
            )
            if before != [200] or after != [401, 200]:
                raise DrillError(
                    f"gateway client key rotation: before {before} (want [200]), "
                    f"after {after} (want [401, 200] for the old and the new key)"
                )
            ctx.note(
                "gateway",
                "a gateway with the new key set refuses the compromised client key; in "
                "production: set serving.auth's key variable to the new keys and restart",
            )
        ctx.mark("contained", "repository key and gateway client keys rotated")
        ctx.metric("contain_s", _since_fault(ctx))

    def restore(self, ctx: DrillContext) -> None:
        tests = []
        for case in self.cases:
            tests.append(case.recover(ctx, self.repos, self.primary, self.totals))
        ctx.note("restore_tests", tests)
        ctx.mark("recovered", f"restored {len(tests)} component(s) from before the breach")
        ctx.metric("restore_s", _since_fault(ctx))
        lost = ", ".join(f"{n} in {label}" for label, n in self.totals.lost.items())
        ctx.record_rpo(
            max(self.totals.ages, default=0.0),
            f"{sum(self.totals.lost.values())} writes since the verified snapshots are lost "
            f"({lost})",
        )

    def notice(self) -> tuple[str, str]:
        plan = self.stack.plan
        names = [c.comp.name for c in self.cases]
        models = sorted(
            m.name for m in plan.models if any(u.dataset in names for u in m.trained_on)
        )
        body = (
            "We detected unauthorised changes to data we hold. Affected: "
            + self._affected()
            + ". We revoked the credentials involved and restored the data from copies "
            "taken before the change."
        )
        if models:
            body += f" Models trained on that data: {', '.join(models)}."
        return f"Security incident: data altered ({', '.join(names)})", body

    def tell(self, ctx: DrillContext) -> None:
        title, body = self.notice()
        ctx.note("customer_notice", body)
        if self.stack.state_location is None:
            ctx.note("incident", "no state store: the notice is in this journal only")
            return
        from drkit.state.store import StateStore
        from drkit.status.incidents import Incidents

        plan = self.stack.plan
        names = {c.comp.name for c in self.cases}
        touched = [c.name for c in plan.status_page.components if names & set(c.covers)]
        shown = touched or [c.name for c in plan.status_page.components]
        if not shown:
            ctx.note("incident", "the plan has no status_page components: notice journaled only")
            return
        state = StateStore(self.stack.state_location)
        try:
            inc = Incidents(state, [c.name for c in plan.status_page.components]).open(
                f"Drill: {title}",
                components=shown,
                severity="sev1",
                body=body,
                author="drkit drill",
                draft=True,
                cause="drill security-breach",
            )
        finally:
            state.close()
        self.incident = inc.id
        ctx.note("incident", inc.id)

    # --- verify ------------------------------------------------------------------------

    def whole(self, case: Case) -> Step:
        return Step(
            f"{case.label} equals its snapshot from before the breach",
            lambda ctx: case.check(ctx, self.repos, self.primary),
        )

    # --- rollback ----------------------------------------------------------------------

    def cleanup(self, ctx: DrillContext) -> None:
        errors = []
        for kid in (self.compromised_id, self.replacement_id):
            if kid:
                try:
                    self.repo.remove_key(kid)
                except Exception as exc:  # every key is tried; all errors are reported
                    errors.append(f"key {kid[:12]}: {exc}")
        self.compromised_id = self.replacement_id = ""
        for case in self.cases:
            try:
                case.cleanup(self.repos, self.primary)
            except Exception as exc:
                errors.append(f"{case.label}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)
        if self.incident and self.stack.state_location is not None:
            from drkit.state.store import StateStore
            from drkit.status.incidents import Incidents

            state = StateStore(self.stack.state_location)
            try:
                Incidents(state, []).discard(self.incident, "the drill is over", by="drkit drill")
            finally:
                state.close()
        self.repos.close()
        self.engines.close()
        if errors:
            raise DrillError("; ".join(errors))

    def _affected(self) -> str:
        unit = {True: "records", False: "files"}
        return ", ".join(
            f"{label} ({n} {unit[isinstance(c, _VectorCase)]})"
            for c in self.cases
            for label, n in self.affected.items()
            if label == c.label
        )

    def drill(self) -> Drill:
        plan = self.stack.plan
        tiers = [plan.tiers[c.tier] for c in self.comps if c.tier]
        labels = ", ".join(c.label for c in self.cases)
        return Drill(
            scenario="security-breach",
            description=f"{labels}: tampered with by a compromised key; identified by "
            "fingerprint, keys rotated, restored from before the breach, incident drafted",
            steady_state=(
                *(s for c in self.cases for s in c.steady(self.repos, self.primary)),
                Step(f"a repository key of {self.primary} is compromised", self.key_leaks),
            ),
            fault=tuple(self.tamper(c) for c in self.cases),
            recovery=(
                Step("identify the affected data by fingerprint", self.identify),
                Step(
                    "rotate the repository key; the compromised one fails",
                    self.rotate_repository_key,
                ),
                Step("rotate the gateway client keys", self.rotate_client_keys),
                Step("restore from the newest verified snapshots before the breach", self.restore),
                Step("open an incident with a drafted customer notice", self.tell),
            ),
            verify=tuple(self.whole(c) for c in self.cases),
            rollback=(Step("remove the drill's keys, sandboxes and incident", self.cleanup),),
            rto_target_s=min((t.rto for t in tiers), default=None),
            rpo_target_s=min((t.rpo for t in tiers), default=None),
        )


def _since_fault(ctx: DrillContext) -> float:
    return round(time.time() - (ctx.marker("fault_injected") or time.time()), 3)


async def _auth_answers(keys: list[str], tried: list[str]) -> list[int]:
    """What a gateway holding ``keys`` answers each of ``tried`` on an authenticated
    endpoint (in process: the auth check is under test, not the network)."""
    import httpx

    from drkit.gateway.app import create_app
    from drkit.gateway.config import GatewayConfig
    from drkit.types import Secret

    app = create_app(
        GatewayConfig(routes=(), client_keys_env=None, client_keys=tuple(Secret(k) for k in keys))
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.drill") as c:
        return [
            (await c.get("/v1/models", headers={"authorization": f"Bearer {k}"})).status_code
            for k in tried
        ]


def build(stack: Stack, options: DrillOptions) -> Drill:
    return SecurityBreach(stack, pick(stack.plan, options.subject), options.seed).drill()


SCENARIO = Scenario(
    name="security-breach",
    summary="a compromised key tampers with a dataset and a collection; affected data is "
    "identified by fingerprint, repository and gateway keys rotated, data restored from "
    "before the breach, an incident drafted",
    cadence=None,
    unsupported=unsupported,
    build=build,
)
