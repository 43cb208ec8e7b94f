"""The gateway's view of translation: a small protocol and its default implementation.

The engine needs two things per attempt: the request body for the target's dialect
(the target's model, system prompt and parameter overrides applied, streaming on) and a
stream translator turning the target's SSE events into client-dialect ``Event`` s.
:class:`DefaultTranslator` plugs in :mod:`drkit.gateway.translate` for both, the same
dialect included (then it only renames the model and applies overrides).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from drkit.connectors.llm.sse import SSEEvent
from drkit.gateway.config import Dialect, TargetConfig
from drkit.gateway.dialects import Event
from drkit.gateway.translate.requests import prepare_request
from drkit.gateway.translate.stream import StreamTranslator as _StreamTranslator


class StreamTranslator(Protocol):
    def feed(self, ev: SSEEvent) -> list[Event]:
        """Client-dialect events for one upstream event (maybe none, maybe several)."""


class Translator(Protocol):
    def request(
        self, body: dict[str, Any], client: Dialect, target: TargetConfig
    ) -> dict[str, Any]:
        """The streaming request for ``target``; raises TranslationError (400) if unfaithful."""

    def stream(
        self, target: TargetConfig, client: Dialect, route: str, include_usage: bool
    ) -> StreamTranslator:
        """A fresh translator for one upstream stream of ``target``."""


class DefaultTranslator:
    def request(
        self, body: dict[str, Any], client: Dialect, target: TargetConfig
    ) -> dict[str, Any]:
        return prepare_request(
            body,
            client=client,
            upstream=target.provider,
            model=target.model,
            system_prompt=target.system_prompt,
            params=target.params,
            stream=True,
        )

    def stream(
        self, target: TargetConfig, client: Dialect, route: str, include_usage: bool
    ) -> StreamTranslator:
        return _StreamTranslator(
            target.provider,
            client,
            model=route,
            include_usage=include_usage,
            created=int(time.time()),
        )
