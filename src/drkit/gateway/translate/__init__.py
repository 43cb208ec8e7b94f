"""Translation between Anthropic Messages and OpenAI Chat Completions (pure, no I/O).

The gateway calls, per attempt on a target:

- :func:`prepare_request` — the client's body as the target's upstream request
  (translated, ``model`` set, the target's ``system_prompt`` and ``params`` applied);
- :class:`StreamTranslator` — upstream SSE events -> client ``(name, data)`` events,
  with ``first_content`` (end of the hold-back window) and ``done``; a non-streaming
  client's answer is folded from those events (:mod:`drkit.gateway.accumulate`).

Anything that cannot be carried faithfully raises :class:`drkit.errors.TranslationError`
(HTTP 400) naming the field and why. See ``docs/gateway-translation.md``.
"""

from drkit.gateway.dialects import Event
from drkit.gateway.translate.requests import (
    DEFAULT_MAX_TOKENS,
    apply_params,
    apply_system_prompt,
    prepare_request,
    translate_request,
)
from drkit.gateway.translate.responses import (
    STOP_A2O,
    STOP_O2A,
    stop_a2o,
    stop_o2a,
    usage_a2o,
    usage_o2a,
)
from drkit.gateway.translate.stream import StreamTranslator, event_of

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "STOP_A2O",
    "STOP_O2A",
    "Event",
    "StreamTranslator",
    "apply_params",
    "apply_system_prompt",
    "event_of",
    "prepare_request",
    "stop_a2o",
    "stop_o2a",
    "translate_request",
    "usage_a2o",
    "usage_o2a",
]
