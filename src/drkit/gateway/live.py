"""Live drill faults: a share of a route's real requests treats chosen targets as failed.

A live drill (``drkit drill run provider-outage --live URL``) installs a fault through the
authenticated admin API; for that fraction of the route's requests the failover engine
then finds the faulted targets out of service and skips them as it skips an ejected
target (reason ``live_drill``: no upstream call, no retry budget spent), so those requests
go to the next target as in a real outage once the gateway has detected it. The fault
never touches the health board (a 5 % fault must not eject the primary and move 100 %).

The **dead-man timer is the gateway's**: every fault carries the end of its duration and
the end of its lease; the drill renews the lease, and the gateway lifts the fault when
either passes, checked on every request *and* by a timer task, so a drill killed with -9
or cut off by the network cannot leave production faulted. **Stop conditions** (the
route's client-visible error rate, the p99 latency the faulted requests add, the quality
canary ejecting a target of the route) lift it at once, inside the gateway.

Endpoints (admin key: ``Authorization: Bearer`` or ``x-api-key`` with a key of
``serving.auth.admin_keys_env``; client keys are refused)::

    POST   /admin/live-faults             install: drill, owner, route + targets (or
                                          routes: [{route, targets}, ...]), fraction,
                                          duration_s, lease_s, max_error_rate, max_added_p99_s
    GET    /admin/live-faults             active and recently lifted faults, with figures
    GET    /admin/live-faults/{drill}     one drill's faults (all its routes)
    POST   /admin/live-faults/{drill}/renew   extend the lease of all of them (410 once lifted)
    DELETE /admin/live-faults/{drill}     lift them now (``drkit drill abort``)

A drill on several routes (the regional exercise) has one fault per route, installed all
or none, with one id, owner, duration and lease: one renewal, one lift for all of them.

Events: ``live_fault`` when one is installed, ``live_fault_lifted`` when it ends (``why``:
``duration``, ``lease``, ``aborted``, ``stop_condition: ...``); the status page shows the
route's components under maintenance meanwhile. Faulted attempts record no ``failover``
event (they would page as a degradation); they are counted in the fault's figures and in
``drkit_gateway_failovers{reason="live_drill"}``.
"""

# long: one fault's whole life (spec, figures, dead man, stop conditions) kept together;
# the body's checks are live_spec.py, the HTTP side live_api.py, Redis redis_live.py

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drkit.errors import LiveFaultRefused
from drkit.gateway.auth import KeyCheck
from drkit.gateway.config import GatewayConfig, RouteConfig
from drkit.gateway.events import EventSink
from drkit.gateway.health import HealthBoard
from drkit.gateway.live_spec import parse_install, positive

log = logging.getLogger("drkit.gateway.live")

#: the failure reason of an attempt the live fault failed (headers, metrics)
LIVE_REASON = "live_drill"
#: the error-rate stop condition counts over at least this many requests of the route
MIN_SAMPLE = 50
#: the latency stop condition needs this many faulted requests (and as many others)
MIN_LATENCY_SAMPLE = 20
#: latencies kept per fault and group (the newest ones: a sliding window)
LATENCY_WINDOW = 5000
#: lifted faults kept for reading their final figures
KEEP_LIFTED = 50
#: the timer task wakes at least this often
TICK = 0.1
#: another process that has not shared its figures for this long (they share every second
#: while a fault is on) counts as gone: dead, or cut from the shared state and so ending
#: the fault by its own timer
SILENT_S = 3.0


@dataclass
class FaultStats:
    """What one gateway process saw of a fault's route while the fault was on."""

    requests: int = 0
    affected: int = 0
    carried: int = 0
    errors: int = 0
    affected_errors: int = 0
    first_affected_at: float | None = None
    first_carried_at: float | None = None
    affected_latency: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    other_latency: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def to_json(self, sample: int | None = None) -> dict[str, Any]:
        """Counts and latencies (``sample``: keep only the newest that many of each)."""
        a = list(self.affected_latency)
        o = list(self.other_latency)
        if sample is not None:
            a, o = a[-sample:], o[-sample:]
        return {
            "requests": self.requests,
            "affected": self.affected,
            "carried": self.carried,
            "errors": self.errors,
            "affected_errors": self.affected_errors,
            "first_affected_at": self.first_affected_at,
            "first_carried_at": self.first_carried_at,
            "affected_latency": a,
            "other_latency": o,
        }


_COUNTS = ("requests", "affected", "carried", "errors", "affected_errors")


def _p(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def summarize(parts: Iterable[Mapping[str, Any]], started_at: float) -> dict[str, Any]:
    """The figures of a fault from the stats of one or several processes."""
    parts = list(parts)
    total = {k: sum(int(p.get(k) or 0) for p in parts) for k in _COUNTS}
    firsts = {
        k: min((float(p[k]) for p in parts if p.get(k) is not None), default=None)
        for k in ("first_affected_at", "first_carried_at")
    }
    a = [float(x) for p in parts for x in p.get("affected_latency", [])]
    o = [float(x) for p in parts for x in p.get("other_latency", [])]
    requests = total["requests"]
    p99_a, p99_o = _p(a, 0.99), _p(o, 0.99)
    carried_at = firsts["first_carried_at"]
    return {
        "requests": requests,
        "affected": total["affected"],
        "carried": total["carried"],
        "client_visible_errors": total["errors"],
        "affected_errors": total["affected_errors"],
        "share": total["affected"] / requests if requests else None,
        "error_rate": total["errors"] / requests if requests else None,
        "p50_affected_s": _p(a, 0.5),
        "p99_affected_s": p99_a,
        "p50_other_s": _p(o, 0.5),
        "p99_other_s": p99_o,
        "added_p99_s": (p99_a - p99_o) if p99_a is not None and p99_o is not None else None,
        "first_affected_at": firsts["first_affected_at"],
        "carried_after_s": (carried_at - started_at) if carried_at is not None else None,
    }


@dataclass
class LiveFault:
    """One live fault: which route and targets, how much, until when, whose."""

    drill: str
    owner: str
    route: str
    targets: tuple[str, ...]
    fraction: float
    started_at: float
    ends_at: float
    lease_s: float
    lease_until: float
    scenario: str = "provider-outage"
    max_error_rate: float | None = None
    max_added_p99_s: float | None = None
    lifted_at: float | None = None
    why: str | None = None
    stats: FaultStats = field(default_factory=FaultStats)
    #: stats of the other gateway processes (shared state), by process
    remote_stats: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    @property
    def key(self) -> tuple[str, str]:
        """A drill has at most one fault per route: (drill, route) names it."""
        return (self.drill, self.route)

    def parts(self) -> list[Mapping[str, Any]]:
        """The stats of every process that saw this fault (this one's first)."""
        return [self.stats.to_json(), *self.remote_stats.values()]

    def applying(self, now: float) -> int:
        """How many processes apply the fault now: this one while it is active, each other
        one whose last word (within :data:`SILENT_S`) says it still does."""
        others = sum(
            1
            for p in self.remote_stats.values()
            if p.get("applying") and now - float(p.get("shared_at") or 0.0) < SILENT_S
        )
        return int(self.active) + others

    def due(self, now: float) -> str | None:
        """Why the fault must end now (``duration``, ``lease``), or None."""
        if now >= self.ends_at:
            return "duration"
        if now >= self.lease_until:
            return "lease"
        return None

    def spec(self) -> dict[str, Any]:
        """What another process needs to apply the fault (no figures)."""
        return {
            "drill": self.drill,
            "owner": self.owner,
            "route": self.route,
            "targets": list(self.targets),
            "fraction": self.fraction,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
            "lease_s": self.lease_s,
            "lease_until": self.lease_until,
            "scenario": self.scenario,
            "max_error_rate": self.max_error_rate,
            "max_added_p99_s": self.max_added_p99_s,
            "lifted_at": self.lifted_at,
            "why": self.why,
        }

    @classmethod
    def from_spec(cls, d: Mapping[str, Any]) -> LiveFault:
        return cls(
            drill=str(d["drill"]),
            owner=str(d["owner"]),
            route=str(d["route"]),
            targets=tuple(str(t) for t in d["targets"]),
            fraction=float(d["fraction"]),
            started_at=float(d["started_at"]),
            ends_at=float(d["ends_at"]),
            lease_s=float(d["lease_s"]),
            lease_until=float(d["lease_until"]),
            scenario=str(d.get("scenario") or "provider-outage"),
            max_error_rate=_opt_float(d.get("max_error_rate")),
            max_added_p99_s=_opt_float(d.get("max_added_p99_s")),
        )

    def public(self, now: float, shared: bool = False) -> dict[str, Any]:
        parts = self.parts()
        out = self.spec()
        out["state"] = "active" if self.active else "lifted"
        out["lease_left_s"] = max(0.0, self.lease_until - now) if self.active else 0.0
        out["remaining_s"] = max(0.0, self.ends_at - now) if self.active else 0.0
        out["processes"] = len(parts)
        out["applying"] = self.applying(now)
        out["shared"] = shared
        out["figures"] = summarize(parts, self.started_at)
        return out


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def drill_view(faults: list[LiveFault], now: float, shared: bool = False) -> dict[str, Any]:
    """One drill's faults as one view: the fault itself for a one-route drill; for several
    routes their common spec, the state of all, the figures summed over every route, and
    ``routes``: each route's own view (also there for one route)."""
    views = [f.public(now, shared) for f in faults]
    if len(views) == 1:
        return {**views[0], "routes": views}
    active = [v for v in views if v["state"] == "active"]
    lifted = [float(v["lifted_at"]) for v in views if v["lifted_at"] is not None]
    started = min(float(v["started_at"]) for v in views)
    return {
        **views[0],
        "route": None,
        "targets": [t for v in views for t in v["targets"]],
        "state": "active" if active else "lifted",
        "lifted_at": None if active else max(lifted),
        "why": next((v["why"] for v in views if v["why"]), None),
        "lease_left_s": min((v["lease_left_s"] for v in active), default=0.0),
        "remaining_s": max((v["remaining_s"] for v in active), default=0.0),
        "processes": max(v["processes"] for v in views),
        "applying": max(v["applying"] for v in views),
        "figures": summarize([p for f in faults for p in f.parts()], started),
        "routes": views,
    }


class SharedLive(Protocol):
    """Live faults shared between gateway processes (:mod:`drkit.gateway.redis_live`)."""

    async def put(self, fault: LiveFault) -> None:
        """Write an active fault (install, renewal) so every process applies it."""

    async def remove(self, fault: LiveFault) -> bool:
        """Announce a lift; True when this process is the first to lift it (it records)."""

    async def refresh(self) -> None:
        """Adopt faults other processes installed or lifted."""

    async def share_stats(self, fault: LiveFault) -> None:
        """Leave this process's figures of ``fault`` for the others."""

    async def read_stats(self, fault: LiveFault) -> None:
        """Fetch the other processes' figures of ``fault`` (``fault.remote_stats``)."""


def admin_key_hashes(env: str | None) -> frozenset[bytes]:
    """sha256 digests of the admin keys in ``env`` (none: the live-fault API is off)."""
    raw = os.environ.get(env, "") if env else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return frozenset(hashlib.sha256(k.encode()).digest() for k in keys)


class LiveFaults:
    """The live faults of one gateway process, their dead-man timer and stop conditions.

    The request path calls :meth:`hit` for each target it would try and :meth:`observe` after
    each answer; both are O(1) and cost one dict lookup while no fault is on.
    """

    def __init__(
        self,
        config: GatewayConfig,
        board: HealthBoard,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.board = board
        self.events = events
        self.clock = clock
        self.rng = rng or random.Random()
        digests = admin_key_hashes(config.admin_keys_env)
        self.admin = KeyCheck(digests)
        #: without admin keys the live-fault API answers 403 to everyone
        self.enabled = bool(digests)
        self.by_route: dict[str, LiveFault] = {}
        #: lifted faults by (drill, route), the newest last
        self.lifted: OrderedDict[tuple[str, str], LiveFault] = OrderedDict()
        self.shared: SharedLive | None = None
        #: ``held(target) -> True`` while the quality canary holds a target
        #: (drkit.gateway.canary; the gateway wires it): a stop condition
        self.held: Callable[[str], bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # --- request path -------------------------------------------------------------------

    def hit(self, route: str, target: str) -> bool:
        """True when this request is to find ``target`` failed (the drill's share)."""
        fault = self.by_route.get(route)
        if fault is None or target not in fault.targets:
            return False
        now = self.clock()
        why = fault.due(now)
        if why is not None:  # the dead man, inline: no request is faulted after the end
            self.lift(fault, why)
            return False
        if self.rng.random() >= fault.fraction:
            return False
        stats = fault.stats
        if stats.first_affected_at is None:
            stats.first_affected_at = now
        return True

    def observe(
        self, route: str | None, status: int | str, reasons: str | None, took: float
    ) -> None:
        """Count one answered request of ``route`` (status, failover reasons, latency)."""
        if route is None:
            return
        fault = self.by_route.get(route)
        if fault is None:
            return
        stats = fault.stats
        stats.requests += 1
        affected = bool(reasons) and LIVE_REASON in (reasons or "")
        error = status == "200-cut" or (
            isinstance(status, int) and (status >= 500 or status == 429)
        )
        if error:
            stats.errors += 1
        if affected:
            stats.affected += 1
            stats.affected_latency.append(took)
            if error:
                stats.affected_errors += 1
            elif status == 200:
                stats.carried += 1
                if stats.first_carried_at is None:
                    stats.first_carried_at = self.clock()
        else:
            stats.other_latency.append(took)
        limit = fault.max_error_rate
        if error and limit is not None and stats.errors > limit * max(stats.requests, MIN_SAMPLE):
            self._stop(
                fault,
                f"{stats.errors} client-visible errors in {stats.requests} "
                f"requests (over {limit:.2%} of at least {MIN_SAMPLE})",
            )

    def _stop(self, fault: LiveFault, why: str) -> None:
        """A stop condition of one route lifts the whole drill (every route of it)."""
        self.lift(fault, f"stop_condition: {why} on route {fault.route}")

    # --- admin operations ---------------------------------------------------------------

    async def install(self, body: Mapping[str, Any]) -> list[LiveFault]:
        """Validate and install a drill's faults, one per route, all or none;
        :class:`LiveFaultRefused` says why not (naming the route)."""
        if self.shared is not None:
            with contextlib.suppress(Exception):
                await self.shared.refresh()  # another process's drill on the route counts
        faults = self._validated(body)
        for fault in faults:
            self.by_route[fault.route] = fault
        for fault in faults:
            await self._put(fault)
            self._record_install(fault)
        return faults

    def _record_install(self, fault: LiveFault) -> None:
        self.events.record(
            "live_fault",
            f"{fault.route}/{','.join(fault.targets)}",
            f"live drill {fault.drill} ({fault.owner}) fails {fault.fraction:.2%} of route "
            f"{fault.route}'s attempts on {', '.join(fault.targets)} for "
            f"{fault.ends_at - fault.started_at:g}s (lease {fault.lease_s:g}s): maintenance",
            fault.spec(),
        )
        log.warning(
            "live fault installed: drill %s on %s/%s (%.2f%%)",
            fault.drill,
            fault.route,
            ",".join(fault.targets),
            fault.fraction * 100,
        )

    async def renew(self, drill: str, lease_s: float | None = None) -> list[LiveFault]:
        """Extend the lease of every fault of ``drill`` (410 once they are lifted)."""
        faults = self.find(drill)
        active = [f for f in faults if f.active]
        if not active:
            raise LiveFaultRefused(
                f"live fault {drill} was lifted ({faults[0].why}); it cannot be renewed",
                status=410,
            )
        now = self.clock()
        why = active[0].due(now)
        if why is not None:
            self.lift(active[0], why)
            raise LiveFaultRefused(f"live fault {drill} was lifted ({why})", status=410)
        if lease_s is not None:
            lease_s = positive(lease_s, "lease_s")
        for fault in active:
            if lease_s is not None:
                fault.lease_s = lease_s
            fault.lease_until = min(now + fault.lease_s, fault.ends_at)
        for fault in active:
            await self._put(fault)
        return faults

    async def _put(self, fault: LiveFault) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.put(fault)
        except Exception as exc:  # Redis away: this process still holds (and ends) it
            log.warning("shared live fault write failed: %s", type(exc).__name__)

    def find(self, drill: str) -> list[LiveFault]:
        """The faults of ``drill`` (one per route; active ones first); 404 when none."""
        found = [f for f in (*self.by_route.values(), *self.lifted.values()) if f.drill == drill]
        if not found:
            raise LiveFaultRefused(f"no live fault of drill {drill!r} on this gateway", status=404)
        return found

    def faults(self) -> list[LiveFault]:
        return [*self.by_route.values(), *reversed(self.lifted.values())]

    def lift(self, fault: LiveFault, why: str, *, record: bool = True) -> None:
        """End ``fault`` and the other faults of its drill now (idempotent);
        ``record=False`` when another process did."""
        siblings = [f for f in self.by_route.values() if f.drill == fault.drill and f is not fault]
        for f in (fault, *siblings):
            self._lift_one(f, why, record=record)

    def _lift_one(self, fault: LiveFault, why: str, *, record: bool) -> None:
        if not fault.active:
            return
        fault.lifted_at = self.clock()
        fault.why = why
        if self.by_route.get(fault.route) is fault:
            del self.by_route[fault.route]
        self.lifted[fault.key] = fault
        while len(self.lifted) > KEEP_LIFTED:
            self.lifted.popitem(last=False)
        log.warning("live fault of drill %s lifted: %s", fault.drill, why)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self.shared is None or loop is None:
            if record:
                self._record_lift(fault)
            return
        task = loop.create_task(self._lift_shared(fault, record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _lift_shared(self, fault: LiveFault, record: bool) -> None:
        first = record
        shared = self.shared
        if shared is not None:
            try:
                if record:
                    first = await shared.remove(fault)
                await shared.share_stats(fault)  # every process's final figures
            except Exception as exc:  # Redis away: every process lifts by its own timer
                log.warning("shared live fault lift failed: %s", type(exc).__name__)
        if first:
            self._record_lift(fault)

    async def figures_of(self, fault: LiveFault) -> LiveFault:
        """``fault`` with the other processes' newest figures (shared state only)."""
        if self.shared is not None:
            try:
                await self.shared.read_stats(fault)
            except Exception as exc:
                log.warning("shared live figures unavailable: %s", type(exc).__name__)
        return fault

    def _record_lift(self, fault: LiveFault) -> None:
        figures = fault.public(self.clock())["figures"]
        self.events.record(
            "live_fault_lifted",
            f"{fault.route}/{','.join(fault.targets)}",
            f"live drill {fault.drill} fault on route {fault.route} lifted ({fault.why}) after "
            f"{(fault.lifted_at or 0) - fault.started_at:.1f}s: {figures['affected']} of "
            f"{figures['requests']} requests affected, "
            f"{figures['client_visible_errors']} client-visible errors",
            {**fault.spec(), "figures": figures},
        )

    # --- the dead-man timer and the slower stop conditions --------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._pending):
            with contextlib.suppress(Exception):
                await t

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the timer must survive anything; the inline check remains
                log.exception("live fault timer")
            now = self.clock()
            ends = [min(f.ends_at, f.lease_until) - now for f in self.by_route.values()]
            await asyncio.sleep(max(0.0, min([TICK, *ends])))

    def tick(self) -> None:
        """Lift what is due: duration or lease over, or a stop condition met."""
        now = self.clock()
        for fault in list(self.by_route.values()):
            if not fault.active:
                continue  # lifted with a sibling of its drill in this same tick
            due = fault.due(now)
            if due is not None:
                self.lift(fault, due)
                continue
            stop = self._stop_condition(fault)
            if stop is not None:
                self._stop(fault, stop)

    def _stop_condition(self, fault: LiveFault) -> str | None:
        for name in self._route_targets(fault.route):
            if self.held is not None and self.held(name):
                return f"the quality canary holds {name}"
            h = self.board.health.get(name)
            if (
                h is not None
                and h.state == "ejected"
                and h.last_reason == "quality"
                and h.last_change >= fault.started_at
            ):
                return f"the quality canary ejected {name}"
        limit = fault.max_added_p99_s
        stats = fault.stats
        if (
            limit is not None
            and len(stats.affected_latency) >= MIN_LATENCY_SAMPLE
            and len(stats.other_latency) >= MIN_LATENCY_SAMPLE
        ):
            added = float(np.quantile(stats.affected_latency, 0.99)) - float(
                np.quantile(stats.other_latency, 0.99)
            )
            if added > limit:
                return f"the faulted requests add {added:.3f}s at p99 (limit {limit:g}s)"
        return None

    def _route_targets(self, route: str) -> list[str]:
        r = self.config.route(route)
        return [t.name for t in r.targets] if r is not None else []

    # --- validation -----------------------------------------------------------------------

    def _validated(self, body: Mapping[str, Any]) -> list[LiveFault]:
        """The faults ``body`` asks for, every route checked before any is installed."""
        req = parse_install(
            body,
            max_fraction=self.config.live_max_fraction,
            max_duration=self.config.live_max_duration,
        )
        if any(f.drill == req.drill for f in self.faults()):
            raise LiveFaultRefused(f"drill id {req.drill!r} was used already", status=409)
        now = self.clock()
        return [
            LiveFault(
                drill=req.drill,
                owner=req.owner,
                route=name,
                targets=self._checked_route(name, targets),
                fraction=req.fraction,
                started_at=now,
                ends_at=now + req.duration_s,
                lease_s=req.lease_s,
                lease_until=now + min(req.lease_s, req.duration_s),
                scenario=req.scenario,
                max_error_rate=req.max_error_rate,
                max_added_p99_s=req.max_added_p99_s,
            )
            for name, targets in req.routes
        ]

    def _checked_route(self, name: str, targets: tuple[str, ...]) -> tuple[str, ...]:
        """``targets`` when a fault of them on route ``name`` may be installed now."""
        route = self.config.route(name)
        if route is None:
            names = ", ".join(r.name for r in self.config.routes)
            raise LiveFaultRefused(
                f"no route named {name!r}; this gateway serves: {names}", status=404
            )
        known = {t.name for t in route.targets}
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise LiveFaultRefused(
                f"route {route.name} has no target {unknown[0]!r}; its targets: "
                + ", ".join(t.name for t in route.targets),
                status=404,
            )
        other = self.by_route.get(route.name)
        if other is not None:
            raise LiveFaultRefused(
                f"live drill {other.drill} ({other.owner}) is already running on route "
                f"{route.name} for {max(0.0, other.ends_at - self.clock()):.0f}s more",
                status=409,
                hint=f"wait for it, or `drkit drill abort {other.drill}`",
            )
        self._need_secondary(route, targets)
        return targets

    def _need_secondary(self, route: RouteConfig, targets: tuple[str, ...]) -> None:
        held = self.held or (lambda name: False)
        healthy = [
            t.name
            for t in route.targets
            if t.name not in targets and self.board.is_available(t.name) and not held(t.name)
        ]
        if not healthy:
            raise LiveFaultRefused(
                f"route {route.name} has no healthy target besides {', '.join(targets)}: "
                "faulting it would fail real clients",
                status=409,
                hint="bring a secondary back into service first (GET /admin/targets)",
            )
