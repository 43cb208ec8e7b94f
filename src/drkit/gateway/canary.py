"""The quality canary: a small pinned eval set sent to each target of a route on an interval.

A target that answers HTTP 200 with wrong answers is down for its users, and nothing in
the health board notices. The canary does: every ``canary.every`` seconds it sends each
example of the route's canary eval set to each target that is in service (straight to the
target, in the target's dialect, through the gateway's own upstream client and
translator), scores the answers, and compares the mean with the route's quality floor.

- Below the floor: the target is *held* for quality. Requests of every route skip it
  (``x-drkit-failover-reason: TARGET:quality``) while any other target is available;
  when every available target is held, traffic is served anyway (a canary set can be
  wrong too, and refusing every request on its word would be an outage of drkit's own
  making). Event ``quality_degraded`` (``gateway.quality_degraded`` in drkit's state).
- A later round at or above the floor releases it: event ``quality_recovered``.
- A round whose answers all failed in transport or with an HTTP error gives no verdict:
  availability is the health board's business (ejection, probes), not the canary's.

Canary requests are never retried (they spend nothing from the retry budget) and a
target's round only starts while the canary's requests over the budget's window stay
within ``max_share`` of all upstream requests in that window (client requests included):
with no client traffic there is no canary traffic either.

Layering: the gateway does not import :mod:`drkit.evals` (siblings). A canary example is
anything with ``id``, ``messages`` and ``score(answer) -> float`` (:class:`CanaryExample`;
``drkit.evals.Example`` is one); :mod:`drkit.workspace.canary` loads the eval sets with
drkit.evals and hands them in. The floor is the plan's (:mod:`drkit.plan.quality`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter, Gauge

from drkit.connectors.llm.provider import ProviderRequest
from drkit.gateway.accumulate import Accumulator
from drkit.gateway.config import RouteConfig, TargetConfig

if TYPE_CHECKING:
    from drkit.gateway.app import Gateway

log = logging.getLogger("drkit.gateway.canary")


class CanaryExample(Protocol):
    """One canary question: its id, its chat messages, and how an answer scores (0..1)."""

    @property
    def id(self) -> str: ...

    @property
    def messages(self) -> Sequence[Mapping[str, str]]: ...

    def score(self, answer: str) -> float: ...


@dataclass(frozen=True, slots=True)
class CanarySpec:
    """The canary of one route."""

    route: str
    examples: tuple[CanaryExample, ...]
    floor: float
    every: float = 60.0
    max_share: float = 0.1
    max_tokens: int = 64
    #: the eval set's name and version (digest), recorded with every verdict
    eval_set: str = ""
    eval_set_digest: str = ""


@dataclass(slots=True)
class TargetQuality:
    """The canary's view of one target (``GET /admin/targets`` shows it)."""

    name: str
    held: bool = False
    score: float | None = None
    answered: int = 0
    floor: float | None = None
    route: str | None = None
    rounds: int = 0
    skipped_rounds: int = 0
    last_round: float = 0.0
    since: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "state": "degraded_quality" if self.held else "ok",
            "score": self.score,
            "answered": self.answered,
            "floor": self.floor,
            "route": self.route,
            "rounds": self.rounds,
            "skipped_rounds": self.skipped_rounds,
            "last_round": self.last_round or None,
            "since": self.since or None,
        }


@dataclass
class _Share:
    """Canary requests over a sliding window, against the gateway's client requests."""

    window: float
    sent: deque[float] = field(default_factory=deque)

    def used(self, now: float) -> int:
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        return len(self.sent)

    def allows(self, now: float, n: int, client_requests: int, share: float) -> bool:
        mine = self.used(now) + n
        return mine <= share * (client_requests + mine)

    def spend(self, now: float, n: int) -> None:
        self.sent.extend([now] * n)


class QualityCanary:
    """The canaries of a gateway's routes; attach with :meth:`attach`, then :meth:`start`."""

    def __init__(
        self, specs: Sequence[CanarySpec], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.specs = tuple(specs)
        self.clock = clock
        self.quality: dict[str, TargetQuality] = {}
        self._gw: Gateway | None = None
        self._share: _Share | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- the gateway's hooks -----------------------------------------------------------

    def attach(self, gw: Gateway) -> None:
        """Bind to the gateway: its upstream client, health board, events and metrics."""
        self._gw = gw
        self._share = _Share(float(gw.budget.window))
        for spec in self.specs:
            route = gw.config.route(spec.route)
            if route is None:
                raise ValueError(f"canary of unknown route {spec.route!r}")
            for t in route.targets:
                self.quality.setdefault(t.name, TargetQuality(t.name))
        registry = gw.metrics.registry
        self._score = Gauge(
            "drkit_gateway_canary_score",
            "Mean score of a target's latest canary round (0..1)",
            ["route", "target"],
            registry=registry,
        )
        self._held = Gauge(
            "drkit_gateway_quality_held",
            "1 while a target is held out of its routes for quality (its canary failed)",
            ["target"],
            registry=registry,
        )
        self._requests = Counter(
            "drkit_gateway_canary_requests",
            "Canary requests by route, target and result (scored, error)",
            ["route", "target", "result"],
            registry=registry,
        )
        for name in self.quality:
            self._held.labels(name).set(0)
        gw.engine.quality_hold = self.is_held

    def is_held(self, target: str) -> bool:
        """Whether requests should skip ``target`` (its canary failed)."""
        q = self.quality.get(target)
        return q is not None and q.held

    def snapshot(self) -> list[dict[str, Any]]:
        return [q.public() for q in self.quality.values()]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(spec)) for spec in self.specs]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- rounds --------------------------------------------------------------------------

    async def _loop(self, spec: CanarySpec) -> None:
        while True:
            started = self.clock()
            try:
                await self.round(spec)
            except asyncio.CancelledError:
                raise
            except Exception:  # a canary bug must not stop the gateway; say so loudly
                log.exception("canary round of route %s failed", spec.route)
            await asyncio.sleep(max(0.0, spec.every - (self.clock() - started)))

    async def round(self, spec: CanarySpec) -> None:
        """One round: every target of the route in service gets the canary set."""
        gw = self._gw
        if gw is None:
            raise RuntimeError("QualityCanary.attach(gateway) first")
        route = gw.serving_route(spec.route)  # alias targets: the model they name now
        if route is None:
            raise ValueError(f"canary of unknown route {spec.route!r}")
        await asyncio.gather(*(self._target_round(gw, spec, route, t) for t in route.targets))

    async def _target_round(
        self, gw: Gateway, spec: CanarySpec, route: RouteConfig, target: TargetConfig
    ) -> None:
        q = self.quality[target.name]
        share = self._share
        assert share is not None
        now = self.clock()
        n = len(spec.examples)
        client = gw.budget.snapshot()["window_requests"]
        if not gw.board.is_available(target.name) or not share.allows(
            now, n, client, spec.max_share
        ):
            q.skipped_rounds += 1
            return
        share.spend(now, n)
        asks = (self._ask(gw, spec, route, target, ex) for ex in spec.examples)
        scores = await asyncio.gather(*asks)
        answered = [s for s in scores if s is not None]
        q.rounds += 1
        q.last_round = time.time()
        if not answered:
            return  # no verdict: availability is the health board's business
        mean = sum(answered) / len(answered)
        q.score, q.answered, q.floor, q.route = mean, len(answered), spec.floor, route.name
        self._score.labels(route.name, target.name).set(mean)
        if mean < spec.floor and not q.held:
            q.held, q.since = True, time.time()
            self._held.labels(target.name).set(1)
            self._event(gw, "quality_degraded", spec, target, q, "held out of its routes")
        elif mean >= spec.floor and q.held:
            q.held, q.since = False, time.time()
            self._held.labels(target.name).set(0)
            self._event(gw, "quality_recovered", spec, target, q, "back in its routes")

    def _event(
        self,
        gw: Gateway,
        kind: str,
        spec: CanarySpec,
        target: TargetConfig,
        q: TargetQuality,
        what: str,
    ) -> None:
        gw.events.record(
            kind,
            f"{spec.route}/{target.name}",
            f"route {spec.route}: target {target.name} canary score {q.score:.3f} "
            f"{'<' if q.held else '>='} floor {spec.floor:.3f} over {q.answered} answers; {what}",
            {
                "route": spec.route,
                "target": target.name,
                "reason": "quality",
                "score": q.score,
                "floor": spec.floor,
                "answered": q.answered,
                "eval_set": spec.eval_set,
                "eval_set_digest": spec.eval_set_digest,
            },
        )

    async def _ask(
        self,
        gw: Gateway,
        spec: CanarySpec,
        route: RouteConfig,
        target: TargetConfig,
        example: CanaryExample,
    ) -> float | None:
        """The example's score on ``target``, or None when no answer came back."""
        body: dict[str, Any] = {
            "model": route.name,
            "messages": [dict(m) for m in example.messages],
            "max_tokens": spec.max_tokens,
        }
        tr = gw.engine.translator
        acc = Accumulator("openai")
        try:
            request = ProviderRequest(
                dialect=target.provider,
                base_url=target.base_url,
                body=tr.request(body, "openai", target),
                deadlines=route.deadlines,
                api_key=gw.keys.get(target.name),
                name=target.name,
            )
            st = tr.stream(target, "openai", route.name, False)
            async with gw.provider.open(request) as up:
                async for raw in up:
                    for ev in st.feed(raw):
                        acc.feed(ev)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # UpstreamError, a translation error...: no answer
            log.debug("canary %s on %s: %s", example.id, target.name, type(exc).__name__)
            self._requests.labels(route.name, target.name, "error").inc()
            return None
        if not acc.terminal:
            self._requests.labels(route.name, target.name, "error").inc()
            return None
        self._requests.labels(route.name, target.name, "scored").inc()
        return float(example.score(acc.text()))
