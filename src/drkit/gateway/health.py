"""Target health across requests: passive ejection, half-open trials, active probes.

States of a target:

- ``healthy``: takes traffic (unless a 429's Retry-After put it in ``cooldown``);
- ``ejected``: takes no traffic. It left service after ``eject_after`` consecutive
  failures, or at once on a connection error or timeout (a black-holed primary must
  cost one deadline, not one per request). Ejection lasts ``base * 2**(n-1)`` seconds,
  capped, where n counts ejections since the last stable recovery; when it expires one
  request is let through as a trial (half-open). Meanwhile the prober sends cheap
  requests with backed-off intervals (``probe_interval`` .. ``max_probe_interval``) and
  puts the target back the moment one succeeds, so traffic returns to a recovered
  primary within seconds instead of after a fixed cooldown.

All methods called in the request path are synchronous and O(1); the optional
:class:`SharedHealth` (Redis) propagates ejections and recoveries between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from drkit.gateway.config import HealthPolicy, TargetConfig
from drkit.gateway.events import EventSink, NullEventSink

log = logging.getLogger("drkit.gateway.health")

State = Literal["healthy", "ejected"]

#: failure reasons that eject at once (the next request should not pay them again); a
#: rejected provider key or a retired model does not heal by itself between requests
HARD_REASONS = frozenset(
    {
        "connect",
        "timeout_connect",
        "timeout_first_token",
        "timeout_idle",
        "timeout_total",
        "upstream_auth",
        "model_not_found",
    }
)
#: what an operator must fix for the reasons that are the gateway's configuration
_WHY = {
    "upstream_auth": "the provider refused the gateway's API key for this target "
    "(revoked or wrong: check the target's api_key_env)",
    "model_not_found": "the provider does not know the target's model (retired or "
    "misspelled: check the target's model)",
}
#: a target is "stable" again after this long healthy; its ejection backoff resets
STABLE_AFTER = 60.0


@dataclass(slots=True)
class TargetHealth:
    name: str
    state: State = "healthy"
    consecutive_failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    cooldown_until: float = 0.0
    last_reason: str | None = None
    last_change: float = 0.0
    recovered_at: float = 0.0
    trial_in_flight: bool = False
    next_probe_at: float = 0.0
    probe_interval: float = 0.0
    successes: int = 0
    failures: int = 0
    probes: int = 0

    def public(self, now: float) -> dict[str, Any]:
        d = asdict(self)
        for k in ("trial_in_flight", "next_probe_at", "probe_interval"):
            d.pop(k)
        shown: str = self.state
        if self.state == "healthy" and self.cooldown_until > now:
            shown = "cooldown"
        d["state"] = shown
        return d


class SharedHealth(Protocol):
    """State shared between gateway processes (see :mod:`drkit.gateway.redis_health`)."""

    def publish(self, health: TargetHealth) -> None:
        """Propagate a local state change (fire and forget; never raises)."""

    async def try_probe_lock(self, name: str, ttl: float) -> bool:
        """True when this process should probe ``name`` now (one prober per interval)."""


Prober = Callable[[TargetConfig], Awaitable[None]]


class HealthBoard:
    def __init__(
        self,
        targets: Iterable[TargetConfig],
        policy: HealthPolicy,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.events: EventSink = events or NullEventSink()
        self.clock = clock
        self.targets: dict[str, TargetConfig] = {}
        self.health: dict[str, TargetHealth] = {}
        for t in targets:
            self.targets.setdefault(t.name, t)
            self.health.setdefault(t.name, TargetHealth(t.name))
        self.shared: SharedHealth | None = None
        #: targets a provider's status feed announces an outage for (name -> why): tried
        #: after every other available target (drkit.gateway.status_feeds)
        self.demoted: dict[str, str] = {}
        self.on_change: Callable[[TargetHealth], None] | None = None
        self._wake = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None

    # --- request path ------------------------------------------------------------------

    def order(self, targets: Iterable[TargetConfig]) -> tuple[list[TargetConfig], bool]:
        """The targets to try, in route order, skipping ejected and cooling ones.

        An ejected target whose ejection expired is included (a half-open trial; see
        :meth:`claim`). When none is available the second value is True ("panic") and
        the list holds the *ejected* targets in the order they become available again: a
        gateway that refuses to try anything during a total outage helps nobody. Targets
        cooling down after a 429 are never tried before their Retry-After has passed (the
        list is empty when only those are left; see :meth:`cooldown_left`).
        """
        now = self.clock()
        out: list[TargetConfig] = []
        ejected: list[TargetConfig] = []
        for t in targets:
            h = self.health[t.name]
            if h.state == "healthy":
                if h.cooldown_until <= now:
                    out.append(t)
            elif h.ejected_until <= now and not h.trial_in_flight:
                out.append(t)
            elif h.cooldown_until <= now:
                ejected.append(t)
        if out:
            if self.demoted:
                out.sort(key=lambda t: t.name in self.demoted)  # stable: route order kept
            return out, False
        ejected.sort(key=lambda t: self.health[t.name].ejected_until)
        return ejected, bool(ejected)

    def last_resort(
        self, targets: Iterable[TargetConfig], tried: Iterable[TargetConfig]
    ) -> list[TargetConfig]:
        """Ejected targets not in ``tried``, soonest-back first: what is left to try once
        every available target of a request has failed retryably.

        An ejection is a guess from past failures (a recovered secondary stays ejected
        until its next probe); when the alternative is answering 503, trying it costs one
        attempt from the retry budget. Targets inside a 429's Retry-After are never
        included: they asked us to wait.
        """
        now = self.clock()
        skip = {t.name for t in tried}
        out = [
            t
            for t in targets
            if t.name not in skip
            and self.health[t.name].state == "ejected"
            and self.health[t.name].cooldown_until <= now
        ]
        out.sort(key=lambda t: self.health[t.name].ejected_until)
        return out

    def cooldown_left(self, targets: Iterable[TargetConfig]) -> float:
        """Seconds until the first of ``targets`` leaves its 429 cooldown (0 if none cools)."""
        now = self.clock()
        left = [self.health[t.name].cooldown_until - now for t in targets]
        left = [x for x in left if x > 0]
        return min(left) if left else 0.0

    def claim(self, target: TargetConfig) -> bool:
        """May this request try ``target`` now? Only one half-open trial at a time."""
        h = self.health[target.name]
        if h.state == "healthy":
            return True
        if h.trial_in_flight or h.ejected_until > self.clock():
            return False
        h.trial_in_flight = True
        return True

    def is_available(self, name: str) -> bool:
        h = self.health[name]
        now = self.clock()
        return h.state == "healthy" and h.cooldown_until <= now

    def record_success(self, target: TargetConfig) -> None:
        h = self.health[target.name]
        h.successes += 1
        h.consecutive_failures = 0
        h.trial_in_flight = False
        if h.state == "ejected":
            self._recover(h, via="traffic")

    def record_failure(
        self, target: TargetConfig, reason: str, retry_after: float | None = None
    ) -> None:
        h = self.health[target.name]
        now = self.clock()
        h.failures += 1
        h.consecutive_failures += 1
        h.last_reason = reason
        h.trial_in_flight = False
        if retry_after is not None and retry_after > 0:
            h.cooldown_until = max(h.cooldown_until, now + retry_after)
            self._changed(h)
        if h.state == "ejected":
            # a failed half-open trial: eject again with a longer backoff
            self._eject(h, reason, now)
        elif reason in HARD_REASONS or h.consecutive_failures >= self.policy.eject_after:
            self._eject(h, reason, now)

    # --- transitions --------------------------------------------------------------------

    def _eject(self, h: TargetHealth, reason: str, now: float) -> None:
        if h.state == "healthy" and now - h.recovered_at > STABLE_AFTER:
            h.ejections = 0
        h.ejections += 1
        period = min(self.policy.base_ejection * 2 ** (h.ejections - 1), self.policy.max_ejection)
        was = h.state
        h.state = "ejected"
        h.trial_in_flight = False
        h.ejected_until = now + period
        h.last_change = now
        h.last_reason = reason
        if was != "ejected":
            h.probe_interval = self.policy.probe_interval
            h.next_probe_at = now + h.probe_interval
        why = _WHY.get(reason)
        self.events.record(
            "ejection",
            h.name,
            f"target {h.name} ejected for {period:g}s after {h.consecutive_failures} "
            f"consecutive failure(s) ({reason})" + (f": {why}" if why else ""),
            {
                "target": h.name,
                "reason": reason,
                "until": h.ejected_until,
                "period": period,
                "ejections": h.ejections,
                "consecutive_failures": h.consecutive_failures,
            },
        )
        self._changed(h)
        self._wake.set()

    def _recover(self, h: TargetHealth, via: str) -> None:
        now = self.clock()
        down_for = now - h.last_change
        h.state = "healthy"
        h.consecutive_failures = 0
        h.ejected_until = 0.0
        h.recovered_at = now
        h.last_change = now
        h.trial_in_flight = False
        self.events.record(
            "recovery",
            h.name,
            f"target {h.name} back in service (via {via}) after {down_for:.2f}s",
            {"target": h.name, "via": via, "down_for": down_for},
        )
        self._changed(h)

    def _changed(self, h: TargetHealth) -> None:
        if self.on_change is not None:
            self.on_change(h)
        if self.shared is not None:
            self.shared.publish(h)

    def apply_remote(self, data: dict[str, Any]) -> None:
        """Adopt another process's newer state for a target (no event: it recorded one)."""
        h = self.health.get(str(data.get("name")))
        if h is None or float(data.get("last_change", 0.0)) <= h.last_change:
            return
        was = h.state
        h.trial_in_flight = False
        h.state = "ejected" if data.get("state") == "ejected" else "healthy"
        h.ejected_until = float(data.get("ejected_until", 0.0))
        h.cooldown_until = max(h.cooldown_until, float(data.get("cooldown_until", 0.0)))
        h.ejections = int(data.get("ejections", h.ejections))
        h.last_reason = data.get("last_reason")
        h.last_change = float(data["last_change"])
        if h.state == "healthy":
            h.consecutive_failures = 0
            h.recovered_at = h.last_change
        elif was != "ejected":
            h.probe_interval = self.policy.probe_interval
            h.next_probe_at = self.clock() + h.probe_interval
            self._wake.set()
        if self.on_change is not None:
            self.on_change(h)

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for name, h in self.health.items():
            d = h.public(now)
            t = self.targets[name]
            d.update(provider=t.provider, region=t.region, model=t.model, base_url=t.base_url)
            d["demoted"] = self.demoted.get(name)
            out.append(d)
        return out

    # --- active probes ------------------------------------------------------------------

    def start_probing(self, probe: Prober) -> None:
        if self._probe_task is None:
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_loop(probe))

    async def stop_probing(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _probe_loop(self, probe: Prober) -> None:
        while True:
            now = self.clock()
            due = [
                h for h in self.health.values() if h.state == "ejected" and h.next_probe_at <= now
            ]
            if due:
                await asyncio.gather(*(self._probe_one(h, probe) for h in due))
                continue
            waits = [h.next_probe_at - now for h in self.health.values() if h.state == "ejected"]
            self._wake.clear()
            timeout = min(waits) if waits else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _probe_one(self, h: TargetHealth, probe: Prober) -> None:
        interval = h.probe_interval or self.policy.probe_interval
        h.next_probe_at = self.clock() + interval
        h.probe_interval = min(interval * 2, self.policy.max_probe_interval)
        if self.shared is not None and not await self.shared.try_probe_lock(h.name, interval * 0.9):
            return
        h.probes += 1
        try:
            await asyncio.wait_for(probe(self.targets[h.name]), self.policy.probe_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed probe is the expected case while ejected
            log.debug("probe of %s failed: %s", h.name, type(exc).__name__)
            return
        if h.state == "ejected":
            self._recover(h, via="probe")
