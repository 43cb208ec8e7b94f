"""The body of ``POST /admin/live-faults``, checked field by field (:mod:`drkit.gateway.live`).

Only what the body alone can tell: types, bounds, this gateway's limits. What depends on
the gateway's state (the route exists, a healthy secondary, no other drill on the route)
is checked by :class:`drkit.gateway.live.LiveFaults` before anything is installed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drkit.errors import LiveFaultRefused


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """One drill's faults as asked: one entry of ``routes`` per route, in order."""

    drill: str
    owner: str
    routes: tuple[tuple[str, tuple[str, ...]], ...]
    fraction: float
    duration_s: float
    lease_s: float
    scenario: str
    max_error_rate: float | None
    max_added_p99_s: float | None


def parse_install(
    body: Mapping[str, Any], *, max_fraction: float, max_duration: float
) -> InstallRequest:
    """The install request in ``body``; :class:`LiveFaultRefused` (400) names what is wrong.

    ``route`` + ``targets`` ask for one route; ``routes: [{route, targets}, ...]`` for
    several (each route once)."""
    fraction = number(body.get("fraction"), "fraction")
    if not 0 < fraction <= 1:
        raise LiveFaultRefused(f"`fraction` must be in (0, 1], not {fraction:g}")
    if fraction > max_fraction:
        raise LiveFaultRefused(
            f"`fraction` {fraction:g} is over this gateway's limit {max_fraction:g} "
            "(testing.live_limits.max_fraction)"
        )
    duration = positive(number(body.get("duration_s"), "duration_s"), "duration_s")
    if duration > max_duration:
        raise LiveFaultRefused(
            f"`duration_s` {duration:g} is over this gateway's limit "
            f"{max_duration:g}s (testing.live_limits.max_duration)"
        )
    stop_rate = body.get("max_error_rate")
    stop_p99 = body.get("max_added_p99_s")
    return InstallRequest(
        drill=_text(body, "drill"),
        owner=_text(body, "owner"),
        routes=_routes(body),
        fraction=fraction,
        duration_s=duration,
        lease_s=positive(number(body.get("lease_s"), "lease_s"), "lease_s"),
        scenario=str(body.get("scenario") or "provider-outage"),
        max_error_rate=None if stop_rate is None else rate(stop_rate, "max_error_rate"),
        max_added_p99_s=None
        if stop_p99 is None
        else positive(number(stop_p99, "max_added_p99_s"), "max_added_p99_s"),
    )


def _routes(body: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    raw = body.get("routes")
    if raw is None:
        return ((_text(body, "route"), _targets(body.get("targets"), "targets")),)
    if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
        raise LiveFaultRefused("`routes` must be a non-empty list of {route, targets} objects")
    if "route" in body or "targets" in body:
        raise LiveFaultRefused("give either `route` and `targets`, or `routes`, not both")
    out: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(raw):
        name = _text(entry, "route", f"routes[{i}].route")
        if name in out:
            raise LiveFaultRefused(f"route {name!r} is twice in `routes`")
        out[name] = _targets(entry.get("targets"), f"routes[{i}].targets")
    return tuple(out.items())


def _text(body: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise LiveFaultRefused(f"`{label or name}` must be a non-empty string")
    return value.strip()


def _targets(raw: Any, label: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise LiveFaultRefused(f"`{label}` must be a non-empty list of target names")
    return tuple(dict.fromkeys(raw))


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LiveFaultRefused(f"`{name}` must be a number")
    return float(value)


def positive(value: float, name: str) -> float:
    if value <= 0:
        raise LiveFaultRefused(f"`{name}` must be more than 0, not {value:g}")
    return value


def rate(value: Any, name: str) -> float:
    r = number(value, name)
    if not 0 <= r <= 1:
        raise LiveFaultRefused(f"`{name}` must be in [0, 1], not {r:g}")
    return r
