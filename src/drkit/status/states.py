"""Component states from live signals: a pure function of events, never typed in by hand.

:func:`replay` turns drkit's events (gateway failovers, ejections and recoveries, eval
runs, the agent's RPO breaches and overdue jobs, drills) into a timeline of state changes
per status-page component, each with its cause. The current state is the timeline's last
entry; the uptime bars integrate it (:mod:`drkit.status.uptime`).

Rules, per covered route (a status component covers routes and data components):

- every target of the route ejected -> ``major_outage``;
- the first (primary) target ejected, or more than half of them -> ``degraded_performance``
  (serving from a secondary) or ``partial_outage`` (more than half ejected);
- a target ejected for reason ``quality`` or held by the gateway's quality canary
  (``gateway.quality_degraded`` until ``gateway.quality_recovered``), or the newest
  ``eval.run`` of the route failed its gate -> ``degraded_quality``;
- a failover within the last :data:`FAILOVER_WINDOW_S` seconds -> ``degraded_performance``.

Per covered data component: an ``rpo.breach``, a ``job.overdue`` or a failed restore test
(``verify.failed``) -> ``degraded_performance`` until the component's next good signal.

A drill's window (its journal's start to end) is ``under_maintenance`` for every page
component: drills never page customers or dent the uptime bars.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: How long one failover keeps a route ``degraded_performance`` without an ejection.
FAILOVER_WINDOW_S = 300.0


class State(StrEnum):
    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    DEGRADED_QUALITY = "degraded_quality"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def label(self) -> str:
        return _LABEL[self]


_SEVERITY = {
    State.OPERATIONAL: 0,
    State.UNDER_MAINTENANCE: 1,
    State.DEGRADED_PERFORMANCE: 2,
    State.DEGRADED_QUALITY: 3,
    State.PARTIAL_OUTAGE: 4,
    State.MAJOR_OUTAGE: 5,
}
_LABEL = {
    State.OPERATIONAL: "Operational",
    State.UNDER_MAINTENANCE: "Under maintenance",
    State.DEGRADED_PERFORMANCE: "Degraded performance",
    State.DEGRADED_QUALITY: "Degraded quality",
    State.PARTIAL_OUTAGE: "Partial outage",
    State.MAJOR_OUTAGE: "Major outage",
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One fact the rules read: an event of drkit's state, reduced to what they need."""

    at: float
    kind: str
    component: str
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, slots=True)
class PageComponent:
    """A status-page component: what it covers; ``routes`` maps a covered route to its
    targets in failover order (names not in it are data components)."""

    name: str
    covers: tuple[str, ...]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """The component entered ``state`` at ``at`` because of ``cause``."""

    at: float
    component: str
    state: State
    cause: str


@dataclass
class _Route:
    targets: tuple[str, ...]
    ejected: dict[str, str] = field(default_factory=dict)  # target -> reason
    failover_until: float = 0.0
    failover_cause: str = ""
    eval_failed: str = ""  # cause, empty when the newest eval passed

    def state(self, now: float) -> tuple[State, str]:
        n = len(self.targets)
        down = [t for t in self.targets if t in self.ejected]
        if n and len(down) == n:
            return (
                State.MAJOR_OUTAGE,
                f"every target of the route is out of service ({', '.join(down)})",
            )
        if n and len(down) * 2 > n:
            return (
                State.PARTIAL_OUTAGE,
                f"{len(down)} of {n} targets out of service ({', '.join(down)})",
            )
        quality = [t for t, why in self.ejected.items() if why == "quality"]
        if quality:
            return State.DEGRADED_QUALITY, f"{quality[0]} ejected by the quality canary"
        if self.eval_failed:
            return State.DEGRADED_QUALITY, self.eval_failed
        if self.targets and self.targets[0] in self.ejected:
            return (
                State.DEGRADED_PERFORMANCE,
                f"primary {self.targets[0]} out of service ({self.ejected[self.targets[0]]}); "
                "serving from a secondary",
            )
        if now < self.failover_until:
            return State.DEGRADED_PERFORMANCE, self.failover_cause
        return State.OPERATIONAL, ""


@dataclass
class _Data:
    problems: dict[str, str] = field(default_factory=dict)  # signal kind -> cause

    def state(self) -> tuple[State, str]:
        if self.problems:
            return State.DEGRADED_PERFORMANCE, "; ".join(self.problems.values())
        return State.OPERATIONAL, ""


#: signal kinds that mark a data component unwell, and those that clear them
_DATA_BAD = {"rpo.breach", "job.overdue", "verify.failed"}
_DATA_GOOD = {"rpo.ok": "rpo.breach", "verify.ok": "verify.failed"}


class Model:
    """The rules' working state; :func:`replay` feeds it signals in time order."""

    def __init__(
        self, components: Sequence[PageComponent], routes: Mapping[str, Sequence[str]]
    ) -> None:
        self.components = list(components)
        self.routes = {r: _Route(tuple(ts)) for r, ts in routes.items()}
        self.data: dict[str, _Data] = {}
        for c in components:
            for name in c.covers:
                if name not in self.routes:
                    self.data.setdefault(name, _Data())
        self.maintenance: list[tuple[float, float, str]] = []

    def apply(self, s: Signal) -> None:
        kind = s.kind
        if kind.startswith("gateway."):
            self._gateway(kind.removeprefix("gateway."), s)
        elif kind == "eval.run":
            route = str(s.data.get("route") or s.component)
            if route in self.routes:
                ok = _eval_passed(s.data)
                self.routes[route].eval_failed = (
                    "" if ok else (s.message or f"eval run on {route} failed its quality gate")
                )
        elif kind in _DATA_BAD and s.component in self.data:
            self.data[s.component].problems[kind] = s.message or kind
        elif kind in _DATA_GOOD and s.component in self.data:
            self.data[s.component].problems.pop(_DATA_GOOD[kind], None)
        elif kind == "agent.run" and s.component in self.data and s.data.get("ok", True):
            self.data[s.component].problems.pop("job.overdue", None)

    def _gateway(self, kind: str, s: Signal) -> None:
        if kind in ("failover", "stream_failure"):
            route = self.routes.get(str(s.data.get("route", s.component.split("/")[0])))
            if route is not None:
                route.failover_until = s.at + FAILOVER_WINDOW_S
                route.failover_cause = s.message or "failover to a secondary target"
        elif kind == "ejection":
            target = str(s.data.get("target", s.component))
            for route in self.routes.values():
                if target in route.targets:
                    route.ejected[target] = str(s.data.get("reason", "failures"))
        elif kind == "recovery":
            target = str(s.data.get("target", s.component))
            for route in self.routes.values():
                route.ejected.pop(target, None)
        elif kind in ("quality_degraded", "quality_recovered"):
            # the gateway's quality canary held a target out of its routes / let it back
            target = str(s.data.get("target", s.component.split("/")[-1]))
            for route in self.routes.values():
                if target not in route.targets:
                    continue
                if kind == "quality_degraded":
                    route.ejected.setdefault(target, "quality")
                elif route.ejected.get(target) == "quality":
                    del route.ejected[target]

    def in_maintenance(self, at: float) -> str:
        for start, end, why in self.maintenance:
            if start <= at < end:
                return why
        return ""

    def states(self, now: float) -> dict[str, tuple[State, str]]:
        """Each page component's state and cause (the worst of what it covers)."""
        out: dict[str, tuple[State, str]] = {}
        why = self.in_maintenance(now)
        for c in self.components:
            if why:
                out[c.name] = (State.UNDER_MAINTENANCE, why)
                continue
            worst: tuple[State, str] = (State.OPERATIONAL, "")
            for name in c.covers:
                got = (
                    self.routes[name].state(now)
                    if name in self.routes
                    else self.data[name].state()
                    if name in self.data
                    else (State.OPERATIONAL, "")
                )
                if got[0].severity > worst[0].severity:
                    worst = (got[0], f"{name}: {got[1]}" if len(c.covers) > 1 else got[1])
            out[c.name] = worst
        return out


def _eval_passed(data: Mapping[str, Any]) -> bool:
    for key in ("passed", "ok", "gate_passed"):
        if key in data:
            return bool(data[key])
    verdict = str(data.get("verdict", data.get("gate", "pass"))).lower()
    return verdict not in ("fail", "failed", "regressed", "regression")


def replay(
    components: Sequence[PageComponent],
    routes: Mapping[str, Sequence[str]],
    signals: Iterable[Signal],
    *,
    maintenance: Iterable[tuple[float, float, str]] = (),
    start: float = 0.0,
    now: float,
) -> list[Change]:
    """The state changes of every component from ``start`` to ``now``, oldest first.

    The first entry of each component is its state at ``start`` (``operational`` before
    any signal). Maintenance windows override every other state while they last.
    """
    model = Model(components, routes)
    model.maintenance = sorted(maintenance)
    ordered = sorted((s for s in signals if s.at <= now), key=lambda s: s.at)
    # times at which a state may change without a signal: failover windows and
    # maintenance windows ending or starting
    ticks: list[float] = []
    for w_start, w_end, _ in model.maintenance:
        ticks += [w_start, w_end]
    ticks += [s.at + FAILOVER_WINDOW_S for s in ordered if s.kind.startswith("gateway.")]
    points = sorted({start, *(t for t in ticks if start <= t <= now)})
    changes: list[Change] = []
    current: dict[str, State] = {}

    def observe(at: float) -> None:
        for name, (state, cause) in model.states(at).items():
            if current.get(name) != state:
                current[name] = state
                changes.append(Change(at, name, state, cause))

    events_iter = iter(ordered)
    pending = next(events_iter, None)
    for point in [*points, now]:
        while pending is not None and pending.at <= point:
            model.apply(pending)
            if pending.at >= start:
                observe(pending.at)
            pending = next(events_iter, None)
        if point >= start:
            observe(point)
    return changes


def current_states(changes: Sequence[Change]) -> dict[str, Change]:
    """The newest change of each component."""
    out: dict[str, Change] = {}
    for c in changes:
        out[c.component] = c
    return out


def rollup(states: Iterable[State]) -> State:
    """The page's overall state: the worst component state (operational when none)."""
    return max(states, key=lambda s: s.severity, default=State.OPERATIONAL)
