"""The failover engine: one client request -> attempts over a route's ordered targets.

Every attempt streams from upstream (so first-token and idle deadlines also protect
non-streaming requests) and is *held back* until its first content event: any failure
before that moves on to the next target and the client never sees it. After the first
content event the stream is the client's; if it then breaks, the route's
``on_stream_failure`` decides: ``error`` ends the stream with a typed error event (the
official SDKs raise it), ``continue`` prefills the partial answer into the next target
and splices the continuation in. A truncated answer is never presented as complete.

Attempts beyond the first spend from the :class:`RetryBudget`; health is updated on
every outcome (success only once an answer completed). Non-retryable upstream errors
(4xx other than 429) go back to the client unchanged.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from drkit.connectors.llm.provider import Provider, ProviderRequest, ProviderStream
from drkit.errors import AllTargetsFailed, UpstreamError
from drkit.gateway.accumulate import Accumulator, Splicer, prefill
from drkit.gateway.budget import RetryBudget
from drkit.gateway.config import Deadlines, Dialect, RouteConfig, TargetConfig
from drkit.gateway.dialects import Event, stream_error_event
from drkit.gateway.events import EventSink
from drkit.gateway.health import HealthBoard
from drkit.gateway.live import LIVE_REASON, LiveFaults
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.redact import Redactor
from drkit.gateway.translation import StreamTranslator, Translator
from drkit.types import Secret


@dataclass
class Trace:
    """What happened to one request: the response headers are built from it."""

    route: str
    #: OpenAI clients get a usage chunk when they asked (non-streaming: always, folded in)
    include_usage: bool = True
    #: False for a non-streaming client: it has received nothing until the answer is
    #: complete, so a mid-answer failure can start over on the next target
    streaming: bool = True
    target: str | None = None
    attempts: int = 0
    reasons: list[str] = field(default_factory=list)
    #: set when the stream ended with an error event instead of a complete answer
    failed: UpstreamError | None = None
    #: the answer as the client received it so far (folded into a response object)
    output: Accumulator | None = None
    #: target name -> ``MODEL@VERSION`` for targets that follow a registry alias
    model_versions: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        h = {"x-drkit-attempts": str(self.attempts)}
        if self.target:
            h["x-drkit-target"] = self.target
        if self.reasons:
            h["x-drkit-failover-reason"] = ", ".join(self.reasons)
        if self.target and self.target in self.model_versions:
            h["x-drkit-model-version"] = self.model_versions[self.target]
        return h


@dataclass
class _Open:
    """An attempt past its first content event."""

    target: TargetConfig
    context: AbstractAsyncContextManager[ProviderStream]
    upstream: ProviderStream
    #: the upstream's events, those of one read together
    events: AsyncIterator[list[Any]]
    translator: StreamTranslator
    held: list[Event]

    async def close(self) -> None:
        await self.context.__aexit__(None, None, None)


class Engine:
    """Failover over a route's targets through one :class:`Provider` (each attempt is one
    ``provider.open``); the rest is what the engine reads and updates along the way."""

    def __init__(
        self,
        provider: Provider,
        *,
        translator: Translator,
        board: HealthBoard,
        budget: RetryBudget,
        events: EventSink,
        metrics: GatewayMetrics,
        keys: dict[str, Secret | None],
        redactor: Redactor,
    ) -> None:
        self.provider = provider
        self.translator = translator
        self.board = board
        self.budget = budget
        self.events = events
        self.metrics = metrics
        self.keys = keys
        self.redactor = redactor
        #: live drill faults (each request's targets are checked), when the gateway has them
        self.live: LiveFaults | None = None
        #: ``hold(target) -> True`` skips the target while others are available (the
        #: quality canary, drkit.gateway.canary, sets it)
        self.quality_hold: Callable[[str], bool] | None = None

    # --- one attempt ----------------------------------------------------------------------

    async def _attempt(
        self,
        route: RouteConfig,
        target: TargetConfig,
        client_dialect: Dialect,
        body: dict[str, Any],
        deadline_at: float,
        include_usage: bool,
    ) -> _Open:
        tr = self.translator
        up_body = tr.request(body, client_dialect, target)
        remaining = max(0.001, deadline_at - time.monotonic())
        d = route.deadlines
        deadlines = Deadlines(
            connect=min(d.connect, remaining),
            first_token=min(d.first_token, remaining),
            stream_idle=d.stream_idle,
            total=remaining,
        )
        context = self.provider.open(
            ProviderRequest(
                dialect=target.provider,
                base_url=target.base_url,
                body=up_body,
                deadlines=deadlines,
                api_key=self.keys.get(target.name),
                name=target.name,
            )
        )
        up = await context.__aenter__()  # raises before anything is open
        try:
            st = tr.stream(target, client_dialect, route.name, include_usage)
            it = up.reads().__aiter__()
            held: list[Event] = []
            async for batch in it:
                for ev in batch:
                    held.extend(st.feed(ev))
                if up.first_content or up.complete:
                    break
            if not (up.first_content or up.complete):
                raise UpstreamError(
                    f"{target.name}: the stream ended before its final event",
                    status=502,
                    reason="stream_cut",
                )
            return _Open(target, context, up, it, st, held)
        except BaseException:
            await context.__aexit__(None, None, None)
            raise

    def _failed(self, route: RouteConfig, target: TargetConfig, exc: UpstreamError) -> None:
        self.metrics.attempt(route.name, target.name, exc.reason)
        if exc.retryable:
            self.board.record_failure(target, exc.reason, exc.retry_after)

    # --- the request ----------------------------------------------------------------------

    async def open(  # long: the failover loop, the gateway's hot path: one frame per attempt
        self, route: RouteConfig, client_dialect: Dialect, body: dict[str, Any], trace: Trace
    ) -> AsyncIterator[list[Event]]:
        """Run attempts until one reaches its first content event; return its events.

        The iterator yields the client-dialect events in batches (one per upstream read),
        so a streaming response writes once per upstream read.

        Raises the upstream's UpstreamError for a non-retryable (4xx) answer and
        AllTargetsFailed when no target produced a first token.
        """
        self.budget.on_request()
        deadline_at = time.monotonic() + route.deadlines.total
        order, panic = self.board.order(route.targets)
        hold = self.quality_hold
        if hold is not None:
            kept = [t for t in order if not hold(t.name)]
            order = kept or order  # every available target held: serve anyway
        for t in route.targets:
            if t not in order:
                trace.reasons.append(f"{t.name}:{self._skip_reason(t)}")
        last: UpstreamError | None = None
        # in panic every target is already a last resort (no half-open claim needed)
        unclaimed: set[str] = {t.name for t in order} if panic else set()
        extended = panic
        i = 0
        while i < len(order):
            target = order[i]
            if self.live is not None and self.live.hit(route.name, target.name):
                # a live drill's share: the target is skipped as if ejected (no upstream
                # call, no retry budget, health untouched, no event that would page)
                trace.reasons.append(f"{target.name}:{LIVE_REASON}")
                self.metrics.failover(route.name, target.name, LIVE_REASON)
                i += 1
                continue
            if trace.attempts > 0:
                if not self.budget.try_spend():
                    self._budget_refused(route, target)
                    trace.reasons.append("retry_budget_exhausted")
                    break
                if time.monotonic() >= deadline_at:
                    break
            if target.name not in unclaimed and not self.board.claim(target):
                trace.reasons.append(f"{target.name}:ejected")
                i += 1
                continue
            trace.attempts += 1
            try:
                opened = await self._attempt(
                    route, target, client_dialect, body, deadline_at, trace.include_usage
                )
            except UpstreamError as exc:
                self._failed(route, target, exc)
                if not exc.retryable:
                    trace.target = target.name
                    raise
                last = exc
                trace.reasons.append(f"{target.name}:{exc.reason}")
                if i + 1 == len(order) and not extended:
                    # every available target failed: the ejected ones are the last resort
                    extended = True
                    extra = self.board.last_resort(route.targets, order)
                    unclaimed.update(t.name for t in extra)
                    order.extend(extra)
                if i + 1 < len(order):
                    self.metrics.failover(route.name, target.name, exc.reason)
                    self.events.record(
                        "failover",
                        f"{route.name}/{target.name}",
                        self.redactor.text(
                            f"route {route.name}: {target.name} failed ({exc.reason}); "
                            f"trying {order[i + 1].name}"
                            + (" (ejected: last resort)" if order[i + 1].name in unclaimed else "")
                        ),
                        {
                            "route": route.name,
                            "from": target.name,
                            "to": order[i + 1].name,
                            "reason": exc.reason,
                            "status": exc.status,
                            "last_resort": order[i + 1].name in unclaimed,
                        },
                    )
                i += 1
                continue
            trace.target = target.name
            return self._run(
                route, client_dialect, body, trace, opened, order[i + 1 :], deadline_at
            )
        reasons = ", ".join(trace.reasons) or "none"
        if all(r.endswith((":status_429", ":cooldown")) for r in trace.reasons) and trace.reasons:
            # every target asked us to slow down: say so, with when to come back
            wait = self.board.cooldown_left(route.targets)
            raise AllTargetsFailed(
                f"route {route.name}: every target is rate limited ({reasons}); "
                f"retry in {wait:.1f}s",
                hint="slow down, or add targets with more capacity to the route",
                status=429,
                retry_after=wait,
            )
        detail = self.redactor.text(str(last)) if last else "no target could be tried"
        raise AllTargetsFailed(
            f"route {route.name}: every target failed ({reasons}); last error: {detail}",
            hint="see GET /admin/targets and the gateway's events",
        )

    def _skip_reason(self, target: TargetConfig) -> str:
        if self.quality_hold is not None and self.quality_hold(target.name):
            return "quality"
        h = self.board.health[target.name]
        return "ejected" if h.state == "ejected" else "cooldown"

    def _budget_refused(self, route: RouteConfig, target: TargetConfig) -> None:
        self.metrics.budget_exhausted(route.name)
        self.events.record(
            "retry_budget_exhausted",
            f"{route.name}/{target.name}",
            f"route {route.name}: retry budget spent, not trying {target.name}",
            {"route": route.name, "target": target.name, **self.budget.snapshot()},
        )

    async def _run(
        self,
        route: RouteConfig,
        client_dialect: Dialect,
        body: dict[str, Any],
        trace: Trace,
        opened: _Open,
        rest: list[TargetConfig],
        deadline_at: float,
    ) -> AsyncIterator[list[Event]]:
        acc = trace.output = Accumulator(client_dialect)
        current: _Open | None = opened
        splicer: Splicer | None = None
        # upstream OpenAI streams are asked for usage (for non-streaming answers); a
        # streaming client that did not ask must not get the extra choice-less chunk,
        # which breaks the common `chunk.choices[0]` idiom
        strip_usage = client_dialect == "openai" and not trace.include_usage
        try:
            while current is not None:
                try:
                    batch = self._pass(current.held, splicer, acc, strip_usage)
                    if batch:
                        yield batch
                    feed = current.translator.feed
                    # one batch per upstream read: the client gets one write per read
                    async for raw in current.events:
                        if len(raw) == 1:
                            out = feed(raw[0])
                        else:
                            out = [client for ev in raw for client in feed(ev)]
                        batch = self._pass(out, splicer, acc, strip_usage)
                        if batch:
                            yield batch
                    self.board.record_success(current.target)
                    self.metrics.attempt(route.name, current.target.name, "ok")
                    return
                except UpstreamError as exc:
                    failed_target = current.target
                    await current.close()
                    current = None
                    self._failed(route, failed_target, exc)
                    trace.reasons.append(f"{failed_target.name}:{exc.reason}")
                    current, fresh = await self._continue(
                        route,
                        client_dialect,
                        body,
                        trace,
                        acc,
                        failed_target,
                        exc,
                        rest,
                        deadline_at,
                    )
                    if current is None:
                        trace.failed = exc
                        yield [
                            stream_error_event(
                                client_dialect,
                                self.redactor.text(
                                    f"the answer was cut off after it started ({exc.reason} "
                                    f"at {failed_target.name}); the partial output is incomplete"
                                ),
                                "stream_interrupted",
                            )
                        ]
                        return
                    if fresh:  # the new attempt answers from the start
                        acc = trace.output = Accumulator(client_dialect)
                        splicer = None
                    else:
                        splicer = Splicer(client_dialect, acc)
        finally:
            if current is not None:
                await current.close()

    @staticmethod
    def _pass(
        events: list[Event], splicer: Splicer | None, acc: Accumulator, strip_usage: bool
    ) -> list[Event]:
        """Events as the client gets them (spliced after a continuation), accumulated."""
        if splicer is not None:
            events = [out for ev in events for out in splicer.feed(ev)]
        if strip_usage:
            events = [
                ev
                for ev in events
                if ev[0] is not None or ev[1].get("choices") or not ev[1].get("usage")
            ]
        for ev in events:
            acc.feed(ev)
        return events

    async def _continue(  # long: the mid-stream continuation, hot path like open()
        self,
        route: RouteConfig,
        client_dialect: Dialect,
        body: dict[str, Any],
        trace: Trace,
        acc: Accumulator,
        failed: TargetConfig,
        exc: UpstreamError,
        rest: list[TargetConfig],
        deadline_at: float,
    ) -> tuple[_Open | None, bool]:
        """After a mid-stream failure: the next target's attempt (or None), and whether it
        starts the answer afresh (True) or continues the partial one (False).

        A streaming client has the first tokens already: the answer can only be continued
        (``on_stream_failure: continue``, plain text) or ended with an error. A
        non-streaming client has received nothing, so when the answer cannot be continued
        the next target answers from scratch, as before the first token.
        """
        mode = route.on_stream_failure
        can_continue = mode == "continue" and acc.text_only() and bool(acc.text())
        fresh = not can_continue and not trace.streaming
        shown = "retry" if fresh else (mode if can_continue else "error")
        self.metrics.stream_failure(route.name, failed.name, shown)
        then = (
            "retrying from scratch on the next target (the client had received nothing)"
            if fresh
            else "continuing on the next target"
            if can_continue
            else "error sent"
        )
        self.events.record(
            "stream_failure",
            f"{route.name}/{failed.name}",
            f"route {route.name}: stream from {failed.name} broke after the first token "
            f"({exc.reason}); {then}",
            {
                "route": route.name,
                "target": failed.name,
                "reason": exc.reason,
                "mode": mode,
                "action": shown,
            },
        )
        if not (can_continue or fresh):
            return None, False
        partial = acc.text()
        while rest:
            target = rest.pop(0)
            if not self.budget.try_spend():
                self._budget_refused(route, target)
                trace.reasons.append("retry_budget_exhausted")
                return None, False
            if time.monotonic() >= deadline_at:
                return None, False
            if not self.board.claim(target):
                continue
            trace.attempts += 1
            if fresh:
                cont_body = body
            else:
                # Anthropic refuses a prefill that ends in whitespace; the model re-emits it
                text = partial.rstrip() if target.provider == "anthropic" else partial
                cont_body = prefill(client_dialect, body, text)
            try:
                opened = await self._attempt(
                    route, target, client_dialect, cont_body, deadline_at, trace.include_usage
                )
            except UpstreamError as err:
                self._failed(route, target, err)
                trace.reasons.append(f"{target.name}:{err.reason}")
                if not err.retryable:
                    return None, False
                continue
            self.events.record(
                "failover",
                f"{route.name}/{failed.name}",
                f"route {route.name}: "
                + ("answering afresh" if fresh else "continuing the answer")
                + f" on {target.name} after {failed.name} broke mid-stream ({exc.reason})",
                {
                    "route": route.name,
                    "from": failed.name,
                    "to": target.name,
                    "reason": exc.reason,
                    "continuation": not fresh,
                },
            )
            self.metrics.failover(route.name, failed.name, exc.reason)
            trace.target = target.name
            return opened, fresh
        return None, False
