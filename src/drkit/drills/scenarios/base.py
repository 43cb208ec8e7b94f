"""A scenario: a named incident that binds to a stack and becomes a :class:`Drill`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drkit.drills.engine import Drill
from drkit.drills.live_options import LiveOptions
from drkit.drills.stack import Stack
from drkit.plan.models import Plan


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """What the operator may choose for one run."""

    seed: int = 0
    #: the route (serving scenarios) or component (data scenarios) to drill; default: first
    subject: str | None = None
    #: the region to lose (region-outage); default: the primary repository's region
    region: str | None = None
    #: data-corruption: damage the live vector collections themselves (no sandbox) and
    #: repair them as `drkit restore --replace` does; writes since the snapshot are lost
    live: bool = False
    #: a live drill on a running gateway (``--live URL``): what to fault, how much, how
    #: long (:class:`drkit.drills.live.LiveOptions`); None: rehearse on simulators
    gateway: LiveOptions | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    #: ``"failover_drill"``, ``"regional_failover"`` or ``"restore_test"``: the plan's
    #: testing cadence this scenario counts towards (``None``: none)
    cadence: str | None
    #: why the plan cannot run it (``None``: it can)
    unsupported: Callable[[Plan], str | None]
    build: Callable[[Stack, DrillOptions], Drill]
    #: designed only: what is missing before it runs (``None``: runnable)
    missing: str | None = None
    tags: tuple[str, ...] = field(default=())

    def why_not(self, plan: Plan) -> str | None:
        if self.missing is not None:
            return f"designed, not yet runnable: {self.missing}"
        return self.unsupported(plan)
