"""Scenarios designed but not yet runnable (docs/drills.md has their full design).

They complete with the lineage / model-registry work; until then ``drkit drill run``
refuses them with what is missing instead of faking a result.
"""

from __future__ import annotations

from drkit.drills.engine import Drill
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.stack import Stack
from drkit.errors import DrillError
from drkit.plan.models import Plan


def _never(plan: Plan) -> str | None:
    return None


def _not_built(stack: Stack, options: DrillOptions) -> Drill:
    raise DrillError("this scenario is designed but not implemented yet")


SECURITY_BREACH = Scenario(
    name="security-breach",
    summary="a compromised key tampers with a dataset and a collection; affected data is "
    "identified by fingerprint, the repository key rotated, data restored, an incident opened",
    cadence=None,
    unsupported=_never,
    build=_not_built,
    missing="lineage of which models and collections derive from which data (drkit.lineage) "
    "and incidents (drkit.status)",
)
