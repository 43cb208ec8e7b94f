"""Prometheus metrics of one gateway app (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from drkit.gateway.health import TargetHealth

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATES = ("healthy", "cooldown", "ejected")


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "drkit_gateway_requests",
            "Client requests by route, client dialect and outcome",
            ["route", "dialect", "outcome"],
            registry=r,
        )
        self.attempts = Counter(
            "drkit_gateway_attempts",
            "Upstream attempts by route, target and result (ok or the failure reason)",
            ["route", "target", "result"],
            registry=r,
        )
        self.failovers = Counter(
            "drkit_gateway_failovers",
            "Failovers away from a target, by reason",
            ["route", "target", "reason"],
            registry=r,
        )
        self.stream_failures = Counter(
            "drkit_gateway_stream_failures",
            "Streams that broke after the first token, by handling (error or continue)",
            ["route", "target", "mode"],
            registry=r,
        )
        self.budget = Counter(
            "drkit_gateway_retry_budget_exhausted",
            "Failovers refused because the retry budget was spent",
            ["route"],
            registry=r,
        )
        self.target_state = Gauge(
            "drkit_gateway_target_state",
            "1 for the state each target is in (healthy, cooldown, ejected)",
            ["target", "state"],
            registry=r,
        )
        self.refused = Counter(
            "drkit_gateway_translation_refused",
            "Sampled client requests a target of another dialect could not carry, by field "
            "(the translation probe)",
            ["route", "target", "field"],
            registry=r,
        )
        self.demoted = Gauge(
            "drkit_gateway_target_demoted",
            "1 while a provider's status feed announces an outage and the target is demoted",
            ["target"],
            registry=r,
        )
        self.latency = Histogram(
            "drkit_gateway_request_seconds",
            "Time from request to the first byte of the answer (streams) or the whole answer",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._attempts: dict[tuple[str, str, str], Counter] = {}
        self._latency: dict[str, Histogram] = {}

    # labelled children are looked up once and kept (prometheus' labels() takes a lock
    # and builds a key on every call)

    def request(self, route: str, dialect: str, outcome: str, seconds: float | None) -> None:
        key = (route, dialect, outcome)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(route, dialect, outcome)
        child.inc()
        if seconds is not None:
            hist = self._latency.get(route)
            if hist is None:
                hist = self._latency[route] = self.latency.labels(route)
            hist.observe(seconds)

    def attempt(self, route: str, target: str, result: str) -> None:
        key = (route, target, result)
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = self.attempts.labels(route, target, result)
        child.inc()

    def failover(self, route: str, target: str, reason: str) -> None:
        self.failovers.labels(route, target, reason).inc()

    def stream_failure(self, route: str, target: str, mode: str) -> None:
        self.stream_failures.labels(route, target, mode).inc()

    def budget_exhausted(self, route: str) -> None:
        self.budget.labels(route).inc()

    def translation_refused(self, route: str, target: str, field: str) -> None:
        self.refused.labels(route, target, field).inc()

    def target_demoted(self, target: str, demoted: bool) -> None:
        self.demoted.labels(target).set(1 if demoted else 0)

    def target(self, health: TargetHealth, shown: str) -> None:
        for state in _STATES:
            self.target_state.labels(health.name, state).set(1 if state == shown else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
