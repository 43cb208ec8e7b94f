"""Non-streaming response bodies, stop reasons and usage between the two dialects."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from drkit.connectors.llm.sse import Dialect
from drkit.errors import TranslationError

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason``.
STOP_A2O: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

#: OpenAI ``finish_reason`` -> Anthropic ``stop_reason``. OpenAI does not say whether
#: ``stop`` was a stop sequence; it maps to ``end_turn`` with ``stop_sequence: null``.
STOP_O2A: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_a2o(reason: str | None) -> str | None:
    return None if reason is None else STOP_A2O.get(reason, "stop")


def stop_o2a(reason: str | None) -> str | None:
    return None if reason is None else STOP_O2A.get(reason, "end_turn")


def usage_a2o(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Anthropic usage -> OpenAI usage; cached input counts as prompt tokens (as OpenAI's)."""
    u = usage or {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = (
        int(u.get("input_tokens") or 0) + cached + int(u.get("cache_creation_input_tokens") or 0)
    )
    completion = int(u.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def usage_o2a(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage -> Anthropic usage (cached prompt tokens reported as cache reads)."""
    u = usage or {}
    cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    out: dict[str, Any] = {
        "input_tokens": int(u.get("prompt_tokens") or 0) - cached,
        "output_tokens": int(u.get("completion_tokens") or 0),
    }
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def anthropic_to_openai_response(
    body: Mapping[str, Any], *, model: str | None = None, created: int = 0
) -> dict[str, Any]:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(body.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}, separators=(",", ":")),
                    },
                }
            )
        else:
            raise TranslationError(f"cannot translate response content[{i}] of type {kind!r}")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": body.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": model or body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": stop_a2o(body.get("stop_reason")) or "stop",
                "logprobs": None,
            }
        ],
        "usage": usage_a2o(body.get("usage")),
    }


def openai_to_anthropic_response(
    body: Mapping[str, Any], *, model: str | None = None
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` (one choice) as an Anthropic ``message``."""
    choices = body.get("choices") or []
    if len(choices) != 1:
        raise TranslationError(f"cannot translate a response with {len(choices)} choices")
    choice = choices[0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get("refusal"):
        content.append({"type": "text", "text": str(msg["refusal"])})
    if msg.get("content"):
        content.append({"type": "text", "text": str(msg["content"])})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            raise TranslationError(
                "cannot translate a tool call whose arguments are not JSON"
            ) from None
        content.append(
            {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": args}
        )
    finish = choice.get("finish_reason")
    stop = "refusal" if msg.get("refusal") else stop_o2a(finish) or "end_turn"
    return {
        "id": body.get("id"),
        "type": "message",
        "role": "assistant",
        "model": model or body.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_o2a(body.get("usage")),
    }


def translate_response(
    body: Mapping[str, Any],
    upstream: Dialect,
    client: Dialect,
    *,
    model: str | None = None,
    created: int = 0,
) -> dict[str, Any]:
    """An upstream non-streaming response in the client's dialect.

    ``model`` replaces the upstream's model name when given (e.g. the route name);
    ``created`` is OpenAI's Unix timestamp (callers pass ``int(time.time())``).
    """
    if upstream == client:
        out = copy.deepcopy(dict(body))
        if model:
            out["model"] = model
        return out
    try:
        if upstream == "anthropic":
            return anthropic_to_openai_response(body, model=model, created=created)
        return openai_to_anthropic_response(body, model=model)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        raise TranslationError(
            f"malformed {upstream} response: a field has the wrong type ({type(exc).__name__})"
        ) from exc
