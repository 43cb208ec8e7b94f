"""Stop reasons and usage between the two dialects (the stream translator's tables).

A non-streaming client's answer is folded from the translated stream
(:mod:`drkit.gateway.accumulate`): upstream calls always stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
