"""The built-in scenarios, by name (``drkit drill list`` shows them)."""

from __future__ import annotations

from drkit.drills.scenarios import (
    data_corruption,
    designed,
    model_regression,
    provider_outage,
    region_outage,
)
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.errors import UsageError

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        provider_outage.SCENARIO,
        region_outage.SCENARIO,
        data_corruption.SCENARIO,
        model_regression.SCENARIO,
        designed.SECURITY_BREACH,
    )
}

__all__ = ["SCENARIOS", "DrillOptions", "Scenario", "get"]


def get(name: str) -> Scenario:
    """The scenario ``name``; :class:`UsageError` (exit 2) naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"unknown scenario {name!r}",
            hint="one of: " + ", ".join(SCENARIOS) + " (`drkit drill list`)",
        ) from None
