"""Would this request survive a failover? The translation probe answers it from live traffic.

For a sampled share of client requests (``serving.gateway.translation_probe``), the gateway
translates the request to the dialect of every target of the route whose dialect differs
from the client's, after the request's own handling has been scheduled (``call_soon`` on the
event loop: never on the answer's path, never able to fail it). A translator refusal
(:func:`drkit.gateway.translate.checks.refuse`: the field and why) is recorded as a
``translation_refused`` event (``gateway.translation_refused`` in drkit's state), once per
(route, target, field) per window (``serving.gateway.translation_probe_window``) so traffic
does not flood the state, and counted on every sampled refusal in the Prometheus counter
``drkit_gateway_translation_refused``. ``drkit providers`` marks a secondary with a refusal in
its window not ready to take over.

Only field names and the translator's reason are recorded, never request content: the
values a reason quotes (a role, a content type, a tool_choice) are replaced by ``<value>``,
and array indices in field names are folded (``messages[3].content[1]`` →
``messages[].content[]``) so one feature is one row however long the conversation.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

from drkit.errors import TranslationError
from drkit.gateway.config import Dialect, RouteConfig, TargetConfig
from drkit.gateway.events import EventSink
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.translation import Translator

log = logging.getLogger("drkit.gateway.translation_probe")

_INDEX = re.compile(r"\[\d+\]")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
#: distinct (route, target, field) rows remembered; beyond it the oldest are forgotten
_MAX_ROWS = 1024
_MAX_FIELD = 120


def feature(field: str) -> str:
    """``field`` with its array indices folded: the feature, not the position."""
    return _INDEX.sub("[]", field)[:_MAX_FIELD]


def scrub(reason: str) -> str:
    """The translator's reason without the request values it quotes."""
    out = _QUOTED.sub("<value>", reason)
    # a number before "is above" is the client's value (temperature); limits stay
    out = re.sub(rf"^{_NUMBER.pattern} is", "<value> is", out)
    return out[:200]


class TranslationProbe:
    """Samples requests and records which fields another dialect's targets would refuse."""

    def __init__(
        self,
        translator: Translator,
        events: EventSink,
        metrics: GatewayMetrics,
        *,
        share: float,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.translator = translator
        self.events = events
        self.metrics = metrics
        self.share = share
        self.window = window
        self.clock = clock
        self._sample = sample
        self._seen: dict[tuple[str, str, str], float] = {}  # -> when it was last recorded
        #: requests probed and refusals found (shown nowhere; tests and debugging)
        self.probed = 0

    def observe(self, route: RouteConfig, client: Dialect, body: dict[str, Any]) -> None:
        """Maybe probe ``body`` (a client request on ``route``) later on the event loop."""
        if self.share <= 0:
            return
        others = tuple(t for t in route.targets if t.provider != client)
        if not others or (self.share < 1 and self._sample() >= self.share):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.check(route.name, client, body, others)
            return
        loop.call_soon(self.check, route.name, client, body, others)

    def check(
        self, route: str, client: Dialect, body: dict[str, Any], targets: tuple[TargetConfig, ...]
    ) -> None:
        """Translate ``body`` for each of ``targets``; record what they refuse. Never raises."""
        self.probed += 1
        for target in targets:
            try:
                self.translator.request(body, client, target)
            except TranslationError as exc:
                if exc.field is not None:  # a malformed body is the client's own 400
                    self._refused(route, client, target, exc.field, exc.reason or "")
            except Exception:  # a translator bug must not reach the event loop
                log.debug("translation probe of %s/%s failed", route, target.name, exc_info=True)

    def _refused(
        self, route: str, client: Dialect, target: TargetConfig, field: str, reason: str
    ) -> None:
        name = feature(field)
        self.metrics.translation_refused(route, target.name, name)
        key = (route, target.name, name)
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last < self.window:
            return
        if len(self._seen) >= _MAX_ROWS:
            del self._seen[next(iter(self._seen))]
        self._seen.pop(key, None)
        self._seen[key] = now
        why = scrub(reason)
        self.events.record(
            "translation_refused",
            f"{route}/{target.name}",
            f"{target.name} ({target.provider}) cannot carry {name} that clients of route "
            f"{route} send: {why}",
            {
                "route": route,
                "target": target.name,
                "dialect": target.provider,
                "client_dialect": client,
                "field": name,
                "reason": why,
            },
        )
