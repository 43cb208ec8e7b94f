"""``model-regression``: the serving alias moves to a version that answers wrongly (HTTP 200).

A route target names ``@MODEL:ALIAS``; the drill rehearses it on a real gateway that
follows the alias, its targets played by simulators that answer the prompt (``echo``),
against a *sandbox* copy of the model's registry (the real registry and its ledger are
never written: the drill's rollback checks they are as before).

- steady state: the alias serves version N and an eval run through the gateway passes;
- fault: version N+1 (the next registered version, else a drill candidate) answers
  wrongly (the simulator's ``wrong_answer`` fault for its upstream model only), and the
  alias is moved to it;
- detection: the eval gate (``drkit model promote``'s, :mod:`drkit.drills.model_gate`)
  flags N+1 against N on an eval run through the gateway;
- recovery: ``model rollback`` (the same function as the CLI's) moves the alias to the
  newest earlier version that passes; RTO = until the gateway serves it; *time to quality
  recovery* = until an eval run through the gateway passes again;
- verify: the restored alias's eval is within tolerance of the steady state (paired test);
- rollback: faults cleared, rehearsal stopped, sandbox dropped, real registry unchanged.

Its journal data has the sandbox's alias ledger, the eval runs and the gate's numbers.
The eval runs through the gateway are in :mod:`drkit.drills.scenarios.regression_evals`,
the real registry and its sandbox copy in :mod:`drkit.drills.scenarios.regression_registry`;
this module has the drill's steps.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.model_gate import GateResult, eval_gate, rollback
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.scenarios.regression_evals import (
    PASS_SCORE,
    PROPAGATION_LIMIT,
    EvalRun,
    GatewayEvals,
)
from drkit.drills.scenarios.regression_registry import (
    candidate,
    open_sandbox,
    read_real,
    real_fingerprint,
    record_drill,
)
from drkit.drills.stack import Stack
from drkit.errors import DrillError, UsageError
from drkit.lineage.registry import Registry, parse_alias_target
from drkit.plan.models import Plan, Route, Target
from drkit.state.store import StateStore, has_state

if TYPE_CHECKING:  # the rehearsal runs the gateway (the gateway extra)
    from drkit.drills.rehearsal import Rehearsal


def alias_target(route: Route) -> tuple[Target, str, str] | None:
    """The route's first target naming ``@MODEL:ALIAS``: (target, model, alias)."""
    for t in route.targets:
        try:
            ref = parse_alias_target(t.model)
        except UsageError:
            continue
        if ref is not None:
            return t, ref[0], ref[1]
    return None


def unsupported(plan: Plan) -> str | None:
    if not any(alias_target(r) for r in plan.serving.routes):
        return "no route target follows a model alias (model: '@MODEL:ALIAS')"
    return None


def pick_route(plan: Plan, name: str | None) -> Route:
    routes = [r for r in plan.serving.routes if alias_target(r) is not None]
    if name is None:
        return routes[0]
    for r in routes:
        if r.name == name:
            return r
    raise UsageError(
        f"no route {name!r} with a target that follows a model alias",
        hint="routes: " + ", ".join(r.name for r in routes),
    )


@dataclass
class ModelRegression:
    plan: Plan
    route: Route
    target: Target
    model: str
    alias: str
    state_location: Path | str | None
    workdir: Path
    seed: int = 0
    rehearsal: Rehearsal | None = None
    sandbox: StateStore | None = None
    registry: Registry | None = None
    real_before: tuple[Any, ...] | None = None
    good: str = ""
    bad: str = ""
    bad_upstream: str = ""
    #: the eval runs through the rehearsal's gateway (made once it serves)
    evals: GatewayEvals | None = None
    gate_result: GateResult | None = None

    # --- helpers -------------------------------------------------------------------------

    @property
    def runs(self) -> dict[str, EvalRun]:
        """The eval runs so far, by label (``steady``, ``fault``, ``recovered``)."""
        return self.evals.runs if self.evals is not None else {}

    def _real_fingerprint(self) -> tuple[Any, ...]:
        assert self.state_location is not None
        return real_fingerprint(self.state_location, self.model)

    def _reg(self) -> Registry:
        assert self.registry is not None, "the sandbox registry is made in steady state"
        return self.registry

    def _rh(self) -> Rehearsal:
        assert self.rehearsal is not None
        return self.rehearsal

    def _evals(self) -> GatewayEvals:
        assert self.evals is not None, "the evals are made once the rehearsal serves"
        return self.evals

    # --- steady state --------------------------------------------------------------------

    def _no_registry(self) -> DrillError:
        return DrillError(
            f"no drkit state with a registry for {self.model!r}",
            hint=f"drkit model register {self.model} VERSION --upstream "
            f"{self.target.provider}=MODEL, then drkit model alias set {self.model} "
            f"{self.alias} VERSION --reason ...",
        )

    def sandbox_registry(self, ctx: DrillContext) -> None:
        if self.state_location is None or not has_state(self.state_location):
            raise self._no_registry()
        real = read_real(self.state_location, self.model, self.alias)
        if real is None:
            # a state that exists (the drill's own events open it) without the model
            raise self._no_registry()
        self.good, copied = real
        self.real_before = self._real_fingerprint()
        self.sandbox = open_sandbox(self.workdir, copied)
        self.registry = reg = Registry(self.sandbox)
        provider = self.target.provider
        _, good_up = reg.serving(self.model, self.alias, provider)
        self.bad, self.bad_upstream = candidate(reg, self.model, self.good, good_up, provider)
        ctx.note("serving", f"{self.model}@{self.good} ({good_up})")
        ctx.note("candidate", f"{self.model}@{self.bad} ({self.bad_upstream})")
        ctx.note("sandbox", str(self.workdir))

    def start(self, ctx: DrillContext) -> None:
        from drkit.drills.rehearsal import Rehearsal

        self.rehearsal = Rehearsal(
            self.plan, self.route, seed=self.seed, mode="echo", resolver=self._reg().serving
        )
        self.rehearsal.start()
        assert self.sandbox is not None
        self.evals = GatewayEvals(
            self.rehearsal.url, self.route.name, self.model, self.workdir, self.sandbox
        )

    def steady(self, ctx: DrillContext) -> bool:
        run = self._evals().evaluate("steady")
        ctx.note("eval", run.to_json())
        if run.version != f"{self.model}@{self.good}":
            raise DrillError(f"expected {self.model}@{self.good} to serve, got {run.version}")
        if not run.passed:
            raise DrillError(
                f"the steady-state eval on {run.version} does not pass (mean {run.mean:.3f}, "
                f"{run.errors} errors; needs {PASS_SCORE})"
            )
        return True

    # --- fault ---------------------------------------------------------------------------

    def regress(self, ctx: DrillContext) -> None:
        rh = self._rh()
        for t in self.route.targets:
            if t.model.startswith("@"):  # every target following a registry alias
                rh.fail(t.name, {"kind": "wrong_answer", "model": self.bad_upstream})
        ctx.note("fault", f"wrong_answer for upstream model {self.bad_upstream}")

    def move_alias(self, ctx: DrillContext) -> None:
        change = self._reg().set_alias(
            self.model,
            self.alias,
            self.bad,
            reason="model-regression drill: release the candidate",
        )
        served = self._evals().wait_served(self.bad)
        ctx.metric("alias_propagation_s", round(served - change.at, 3))

    # --- recovery ------------------------------------------------------------------------

    def detect(self, ctx: DrillContext) -> bool:
        run = self._evals().evaluate("fault")
        assert self.sandbox is not None
        result = eval_gate(self.sandbox)(self.model, self.bad, self.good)
        self.gate_result = result
        ctx.note("eval", run.to_json())
        ctx.note("gate", result.to_json())
        if result.passed:
            raise DrillError(f"the eval gate did not flag {self.model}@{self.bad}: {result.reason}")
        ctx.mark("detected", f"the eval gate: {result.reason}")
        return True

    def roll_back(self, ctx: DrillContext) -> bool:
        assert self.sandbox is not None
        change, result, skipped = rollback(
            self._reg(),
            eval_gate(self.sandbox),
            self.model,
            self.alias,
            reason="model-regression drill: roll back",
        )
        ctx.note("rolled_back_to", change.to_version)
        ctx.note("why", result.reason)
        ctx.note("skipped", [f"{s.candidate}: {s.reason}" for s in skipped])
        served = self._evals().wait_served(change.to_version)
        ctx.mark("recovered", f"the gateway serves {self.model}@{change.to_version}", at=served)
        ctx.record_rpo(0.0, "serving a model version loses no data")
        return True

    def quality(self, ctx: DrillContext) -> bool:
        fault_at = ctx.marker("fault_injected") or 0.0
        deadline = time.time() + PROPAGATION_LIMIT
        while True:
            run = self._evals().evaluate("recovered")
            if run.passed:
                ctx.metric("time_to_quality_recovery_s", round(run.at - fault_at, 3))
                ctx.mark("quality_recovered", f"eval passes on {run.version}", at=run.at)
                ctx.note("eval", run.to_json())
                return True
            if time.time() > deadline:
                raise DrillError(f"no passing eval within {PROPAGATION_LIMIT:.0f}s of rollback")

    # --- verify --------------------------------------------------------------------------

    def tolerance(self, ctx: DrillContext) -> bool:
        from drkit.evals import compare

        steady, after = self.runs["steady"], self.runs["recovered"]
        got = compare(steady.rows, after.rows)
        ctx.note("comparison", got.to_dict())
        ctx.metric("quality_delta", round(after.mean - steady.mean, 4))
        if got.regressed:
            raise DrillError(f"the restored alias still regresses: {got.to_dict()}")
        return True

    def serves_restored(self, ctx: DrillContext) -> bool:
        want = f"{self.model}@{self._reg().alias(self.model, self.alias)}"
        got = self._evals().served_version()
        if got != want:
            raise DrillError(f"the gateway serves {got}, the alias names {want}")
        return True

    # --- rollback ------------------------------------------------------------------------

    def stop(self, ctx: DrillContext) -> None:
        if self.rehearsal is not None:
            for ev in self.rehearsal.events.events:
                if ev.kind.startswith("model_"):
                    ctx.mark(f"gateway.{ev.kind}", f"{ev.component}: {ev.message}", at=ev.at)
            self.rehearsal.stop()

    def ledger(self, ctx: DrillContext) -> None:
        if self.registry is not None:
            ctx.note(
                "alias_history",
                [
                    {
                        "from": c.from_version,
                        "to": c.to_version,
                        "action": c.action,
                        "reason": c.reason,
                        "at": c.at,
                    }
                    for c in self.registry.history(self.model, self.alias)
                ],
            )
            ctx.note("eval_runs", {k: r.to_json() for k, r in self.runs.items()})

    def untouched(self, ctx: DrillContext) -> bool:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.real_before is None:
            return True  # steady state never read the real registry
        after = self._real_fingerprint()
        if after != self.real_before:
            raise DrillError(f"the real registry of {self.model!r} changed during the drill")
        ctx.note("real_aliases", dict(after[1]))
        self._record(ctx)
        return True

    def _record(self, ctx: DrillContext) -> None:
        """One ``model.drill`` event in the real state (not a registry event: the ledger
        is unchanged), so ``drkit lineage show`` lists the rehearsals of each version."""
        assert self.state_location is not None
        fault = ctx.marker("fault_injected")

        def since(name: str) -> float | None:
            at = ctx.marker(name)
            return round(at - fault, 3) if at is not None and fault is not None else None

        back = next((r.version for k, r in self.runs.items() if k == "recovered"), None)
        record_drill(
            self.state_location,
            self.model,
            f"model-regression drill of {self.model}:{self.alias}: {self.bad} detected, "
            f"rolled back to {back or '?'}",
            {
                "scenario": "model-regression",
                "model": self.model,
                "alias": self.alias,
                "serving": self.good,
                "candidate": self.bad,
                "versions": sorted({self.good, self.bad}),
                "rolled_back_to": back.split("@", 1)[1] if back else None,
                "detection_s": since("detected"),
                "rto_s": since("recovered"),
                "time_to_quality_recovery_s": ctx.metrics.get("time_to_quality_recovery_s"),
                "sandbox_only": True,
            },
        )

    def drill(self) -> Drill:
        tier = self.plan.tiers[self.route.tier]
        ref = f"@{self.model}:{self.alias}"
        return Drill(
            scenario="model-regression",
            description=f"route {self.route.name!r} follows {ref}; the alias moves to a version "
            "that answers wrongly",
            steady_state=(
                Step(f"copy {self.model}'s registry into a sandbox", self.sandbox_registry),
                Step("start the gateway (following the alias) and simulators", self.start),
                Step(f"the eval through {ref} passes", self.steady),
            ),
            fault=(
                Step("the candidate version answers wrongly (HTTP 200)", self.regress),
                Step(f"{ref} moves to the candidate", self.move_alias),
            ),
            recovery=(
                Step("the eval gate flags the regression", self.detect),
                Step("model rollback to the newest earlier version that passes", self.roll_back),
                Step("the eval through the gateway passes again", self.quality),
            ),
            verify=(
                Step("the restored alias is within tolerance of steady state", self.tolerance),
                Step("the gateway serves what the alias names", self.serves_restored),
            ),
            rollback=(
                Step("stop the rehearsal", self.stop),
                Step("journal the sandbox's alias ledger", self.ledger),
                Step("drop the sandbox; the real registry is as before", self.untouched),
            ),
            rto_target_s=tier.rto,
            rpo_target_s=tier.rpo,
        )


def build(stack: Stack, options: DrillOptions) -> Drill:
    route = pick_route(stack.plan, options.subject)
    found = alias_target(route)
    assert found is not None
    target, model, alias = found
    workdir = stack.scratch / f"model-regression-{time.time_ns()}"
    return ModelRegression(
        stack.plan, route, target, model, alias, stack.state_location, workdir, options.seed
    ).drill()


SCENARIO = Scenario(
    name="model-regression",
    summary="the serving model alias moves to a release that answers wrongly (HTTP 200); "
    "the eval gate detects it and model rollback restores the version that passes",
    cadence=None,
    unsupported=unsupported,
    build=build,
)
