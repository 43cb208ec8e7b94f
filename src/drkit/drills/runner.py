"""Run a scenario by name against a stack: check support, build, run, return the journal."""

from __future__ import annotations

from collections.abc import Callable

from drkit.drills.engine import run_drill
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.scenarios import SCENARIOS, DrillOptions, Scenario, get
from drkit.drills.stack import Stack
from drkit.errors import UsageError
from drkit.plan.models import Plan


def supported(plan: Plan) -> list[Scenario]:
    """The scenarios this plan can run (what ``drkit gameday`` runs)."""
    return [s for s in SCENARIOS.values() if s.why_not(plan) is None]


def run_scenario(
    stack: Stack,
    name: str,
    options: DrillOptions | None = None,
    *,
    plan_label: str | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> Journal:
    """Run scenario ``name``; :class:`UsageError` (exit 2) when it is unknown or unsupported.

    A drill that runs and misses its targets returns a journal with verdict ``fail``;
    Ctrl-C raises :class:`drkit.drills.engine.DrillInterrupted` after the rollback.
    """
    scenario = get(name)
    why = scenario.why_not(stack.plan)
    if why is not None:
        raise UsageError(
            f"plan {stack.plan.name!r} cannot run {name!r}: {why}",
            hint="`drkit drill list` shows what this plan supports",
        )
    opts = options or DrillOptions()
    drill = scenario.build(stack, opts)
    return run_drill(drill, seed=opts.seed, plan=plan_label, on_step=on_step)
