"""Composite availability of serving routes, from providers' SLAs or measured figures.

A route's targets are tried in order, so they are *in parallel*: the route is down only
while every vendor behind it is down. Targets of the same vendor count once (an SLA is
the vendor's promise, and a vendor-wide outage takes all its regions with it), which
errs on the side of less availability. Each failover also costs the time the gateway
needs to reach the next target (``worst_case_failover`` of the plan's deadlines), once
per outage of the earlier vendors (``providers[].outages_per_year``)::

    U = prod(1 - a_i)  +  sum_{i < n} outages_i * failover_s / YEAR_S
    A = 1 - U

Parts that must all work (e.g. the gateway in front of the route) are *in series*:
``A = prod(a_i)``. Both combinators are plain functions so they can be tested apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from drkit.plan.analysis import route_operators, worst_case_failover
from drkit.plan.models import Plan, Route

YEAR_S = 365.0 * 86400.0
HOURS_PER_YEAR = 8760.0
#: outages per year assumed for a vendor whose plan entry does not say
DEFAULT_OUTAGES_PER_YEAR = 12.0

Source = Literal["measured", "plan estimate", "unknown"]


def series(parts: Iterable[float]) -> float:
    """Availability of parts that must all be up: the product."""
    return math.prod(_check(a) for a in parts)


def parallel(parts: Iterable[float]) -> float:
    """Availability of parts of which one suffices: one minus the product of downtimes."""
    return 1.0 - math.prod(1.0 - _check(a) for a in parts)


def _check(a: float) -> float:
    if not 0.0 <= a <= 1.0 or math.isnan(a):
        raise ValueError(f"availability {a!r} is not a fraction in [0, 1]")
    return a


@dataclass(frozen=True)
class VendorFigure:
    vendor: str
    availability: float | None  # fraction; None: unknown
    source: Source


@dataclass(frozen=True)
class RouteAvailability:
    """A route's composite availability and how it was reached."""

    route: str
    tier: str
    vendors: list[VendorFigure]
    failover_s: float
    availability: float | None  # None: some vendor's figure is unknown
    primary_only: float | None  # what the first vendor alone would give (no DR)
    source: Source

    @property
    def outage_hours_per_year(self) -> float | None:
        return None if self.availability is None else (1 - self.availability) * HOURS_PER_YEAR

    @property
    def primary_outage_hours_per_year(self) -> float | None:
        return None if self.primary_only is None else (1 - self.primary_only) * HOURS_PER_YEAR

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "tier": self.tier,
            "vendors": [
                {"vendor": v.vendor, "availability": v.availability, "source": v.source}
                for v in self.vendors
            ],
            "failover_s": self.failover_s,
            "availability": self.availability,
            "primary_only": self.primary_only,
            "outage_hours_per_year": self.outage_hours_per_year,
            "primary_outage_hours_per_year": self.primary_outage_hours_per_year,
            "source": self.source,
        }


def vendor_figure(plan: Plan, vendor: str, measured: Mapping[str, float]) -> VendorFigure:
    """A vendor's availability: measured when the gateway's events give one, else its SLA."""
    if vendor in measured:
        return VendorFigure(vendor, measured[vendor], "measured")
    for p in plan.providers:
        if p.name == vendor and p.sla is not None:
            return VendorFigure(vendor, p.sla / 100.0, "plan estimate")
    return VendorFigure(vendor, None, "unknown")


def outages_per_year(plan: Plan, vendor: str) -> float:
    for p in plan.providers:
        if p.name == vendor and p.outages_per_year is not None:
            return p.outages_per_year
    return DEFAULT_OUTAGES_PER_YEAR


def route_availability(
    plan: Plan, route: Route, measured: Mapping[str, float] | None = None
) -> RouteAvailability:
    """The composite availability of ``route`` (see the module docstring)."""
    figures = [vendor_figure(plan, v, measured or {}) for v in route_operators(route)]
    failover = worst_case_failover(route) / max(1, len(route.targets) - 1)
    known = [f.availability for f in figures]
    source: Source
    if any(a is None for a in known):
        return RouteAvailability(
            route.name, route.tier, figures, failover, None, known[0], "unknown"
        )
    values = [a for a in known if a is not None]
    down = 1.0 - parallel(values)
    down += sum(outages_per_year(plan, f.vendor) for f in figures[:-1]) * failover / YEAR_S
    source = "measured" if all(f.source == "measured" for f in figures) else "plan estimate"
    return RouteAvailability(
        route.name,
        route.tier,
        figures,
        failover,
        max(0.0, 1.0 - min(1.0, down)),
        values[0],
        source,
    )
