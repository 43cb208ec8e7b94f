"""Request bodies: Anthropic Messages <-> OpenAI Chat Completions, refusing what has no twin.

Pure functions on dicts. Every field of the source request is either translated,
accepted because it has no effect on the answer (documented), or refused with a
:class:`~drkit.errors.TranslationError` naming the field and the reason. Nothing is
dropped silently. ``docs/gateway-translation.md`` is the table of record.

Each direction is its own module (:mod:`~drkit.gateway.translate.anthropic_to_openai`,
:mod:`~drkit.gateway.translate.openai_to_anthropic`), their shared checks
:mod:`~drkit.gateway.translate.checks`; this one holds the entry points.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from drkit.connectors.llm.sse import Dialect
from drkit.errors import TranslationError
from drkit.gateway.translate.anthropic_to_openai import anthropic_to_openai
from drkit.gateway.translate.checks import refuse
from drkit.gateway.translate.openai_to_anthropic import DEFAULT_MAX_TOKENS, openai_to_anthropic

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "PROTECTED_PARAMS",
    "anthropic_to_openai",
    "apply_params",
    "apply_system_prompt",
    "openai_to_anthropic",
    "prepare_request",
    "refuse",
    "translate_request",
]

#: Keys a target's ``params`` may not override (they are the request itself).
PROTECTED_PARAMS = frozenset({"model", "messages", "stream", "system", "tools"})


# --- entry points ------------------------------------------------------------------------


def translate_request(body: Mapping[str, Any], source: Dialect, target: Dialect) -> dict[str, Any]:
    """``body`` (in ``source``'s dialect) in ``target``'s dialect; a copy when they match.

    Raises :class:`TranslationError` (400) for anything that cannot be carried faithfully.
    """
    if not isinstance(body, Mapping):
        raise TranslationError("the request body must be a JSON object")
    if source == target:
        return copy.deepcopy(dict(body))
    convert = anthropic_to_openai if source == "anthropic" else openai_to_anthropic
    try:
        return convert(body)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        # a body of the wrong shape (a list where an object belongs...): the client's 400
        raise TranslationError(
            f"malformed {source} request: a field has the wrong type ({type(exc).__name__})",
            hint=f"check the request against the {source} API reference",
        ) from exc


def apply_system_prompt(body: dict[str, Any], dialect: Dialect, prompt: str | None) -> None:
    """Prepend a target's system prompt (in place) ahead of the client's own."""
    if not prompt:
        return
    if dialect == "openai":
        body["messages"] = [{"role": "system", "content": prompt}, *body.get("messages", [])]
        return
    system = body.get("system")
    if not system:
        body["system"] = prompt
    elif isinstance(system, str):
        body["system"] = prompt + "\n\n" + system
    else:
        body["system"] = [{"type": "text", "text": prompt}, *system]


def apply_params(body: dict[str, Any], params: Mapping[str, Any] | None) -> None:
    """Set a target's parameter overrides (in place); a value of None removes the key."""
    for key, value in (params or {}).items():
        if key in PROTECTED_PARAMS:
            raise TranslationError(
                f"target params may not override {key!r}",
                hint="remove it from the target's params in the plan",
            )
        if value is None:
            body.pop(key, None)
        else:
            body[key] = copy.deepcopy(value)


def prepare_request(
    body: Mapping[str, Any],
    *,
    client: Dialect,
    upstream: Dialect,
    model: str,
    system_prompt: str | None = None,
    params: Mapping[str, Any] | None = None,
    stream: bool | None = None,
) -> dict[str, Any]:
    """The upstream request for one target: translated, model set, overrides applied.

    ``stream=True`` forces a streaming upstream call (asking OpenAI for usage);
    ``None`` keeps the client's choice. Raises :class:`TranslationError`.
    """
    if client == upstream and isinstance(body, Mapping):
        # only top-level keys are set below (nested values are replaced, never changed
        # in place), so a shallow copy keeps ``body`` intact without a deep copy
        out = dict(body)
    else:
        out = translate_request(body, client, upstream)
    out["model"] = model
    if stream is not None:
        out["stream"] = stream
    if upstream == "openai":
        if out.get("stream"):
            opts = dict(out.get("stream_options") or {})
            opts["include_usage"] = True
            out["stream_options"] = opts
        else:
            out.pop("stream_options", None)
    apply_system_prompt(out, upstream, system_prompt)
    apply_params(out, params)
    return out
