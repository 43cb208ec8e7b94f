"""An Anthropic Messages request as an OpenAI Chat Completions request (pure, on dicts).

Every field is translated, accepted because it has no effect on the answer, or refused
(:func:`~drkit.gateway.translate.checks.refuse`); ``docs/gateway-translation.md`` is the
table of record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drkit.gateway.translate.checks import check_keys, refuse, text_of_blocks

#: The fields each Anthropic content block may carry into an OpenAI request.
_A_BLOCK_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
}


def _check_block(block: Any, field: str) -> None:
    check_keys(
        block,
        _A_BLOCK_KEYS.get(str(block.get("type"))) if isinstance(block, dict) else None,
        field,
        "no OpenAI equivalent",
    )
    if block.get("citations"):
        raise refuse(f"{field}.citations", "OpenAI Chat has no citations")


_A2O_DIRECT = ("temperature", "top_p", "stream")
# accepted without effect on the answer: a provider-side caching hint
_A2O_IGNORED = frozenset({"cache_control"})


def _image_a2o(block: Mapping[str, Any], field: str) -> dict[str, Any]:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url":
        url = str(source.get("url"))
    else:
        raise refuse(field, f"image source type {kind!r} has no OpenAI equivalent")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_content_a2o(content: Any, field: str) -> str:
    if content is None:
        return ""
    return text_of_blocks(content, field)


def _messages_a2o(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise refuse("messages", "expected a list")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        field = f"messages[{i}]"
        role = msg.get("role")
        extra = set(msg) - {"role", "content"}
        if extra:
            raise refuse(f"{field}.{sorted(extra)[0]}", "unknown message field")
        content = msg.get("content")
        if role not in ("user", "assistant"):
            raise refuse(f"{field}.role", f"role {role!r} is not a Messages API role")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise refuse(f"{field}.content", "expected a string or a list of blocks")
        if role == "assistant":
            texts: list[str] = []
            calls: list[dict[str, Any]] = []
            for j, block in enumerate(content):
                bfield = f"{field}.content[{j}]"
                _check_block(block, bfield)
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
                                "arguments": json.dumps(
                                    block.get("input") or {}, separators=(",", ":")
                                ),
                            },
                        }
                    )
                else:
                    raise refuse(bfield, f"assistant block {kind!r} has no OpenAI equivalent")
            amsg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
            if calls:
                amsg["tool_calls"] = calls
            out.append(amsg)
            continue
        # user: tool results become "tool" messages first, the rest one user message
        parts: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            bfield = f"{field}.content[{j}]"
            _check_block(block, bfield)
            kind = block.get("type")
            if kind == "tool_result":
                text = _tool_result_content_a2o(block.get("content"), f"{bfield}.content")
                if block.get("is_error"):
                    text = "[tool error] " + text
                if parts:
                    raise refuse(bfield, "a tool_result after other content cannot keep its order")
                out.append(
                    {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
                )
            elif kind == "text":
                parts.append({"type": "text", "text": str(block.get("text", ""))})
            elif kind == "image":
                parts.append(_image_a2o(block, bfield))
            else:
                raise refuse(bfield, f"user block {kind!r} has no OpenAI equivalent")
        if parts:
            if len(parts) == 1 and parts[0]["type"] == "text":
                out.append({"role": "user", "content": parts[0]["text"]})
            else:
                out.append({"role": "user", "content": parts})
    return out


def _tools_a2o(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools or ()):
        if tool.get("type") not in (None, "custom"):
            raise refuse(
                f"tools[{i}]", f"server tool {tool.get('type')!r} exists only at Anthropic"
            )
        fn: dict[str, Any] = {"name": tool.get("name"), "parameters": tool.get("input_schema", {})}
        if tool.get("description"):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice_a2o(choice: Mapping[str, Any], out: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        raise refuse("tool_choice.type", f"unknown tool_choice {kind!r}")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def anthropic_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Chat Completions request."""
    out: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    for key, value in body.items():
        if key in ("model", "messages"):
            continue
        if key in _A2O_DIRECT:
            if value is not None:
                out[key] = value
        elif key == "system":
            if value:
                messages.append({"role": "system", "content": _system_text(value)})
        elif key == "max_tokens":
            out["max_completion_tokens"] = value
        elif key == "stop_sequences":
            if value:
                if len(value) > 4:
                    raise refuse("stop_sequences", "OpenAI accepts at most 4 stop sequences")
                out["stop"] = list(value)
        elif key == "tools":
            if value:
                out["tools"] = _tools_a2o(value)
        elif key == "tool_choice":
            if value:
                _tool_choice_a2o(value, out)
        elif key == "metadata":
            extra = set(value or {}) - {"user_id"}
            if extra:
                raise refuse(f"metadata.{sorted(extra)[0]}", "unknown metadata field")
            if (value or {}).get("user_id"):
                out["user"] = value["user_id"]
        elif key == "top_k":
            if value is not None:
                raise refuse("top_k", "OpenAI has no top-k sampling")
        elif key == "thinking":
            if value and value.get("type") != "disabled":
                raise refuse("thinking", "extended thinking has no OpenAI Chat equivalent")
        else:
            raise refuse(key, "no OpenAI Chat Completions equivalent")
    messages.extend(_messages_a2o(body.get("messages")))
    out["messages"] = messages
    if out.get("stream"):
        # usage arrives only when asked for; Anthropic clients always get it
        out["stream_options"] = {"include_usage": True}
    return out


def _system_text(system: Any) -> str:
    if isinstance(system, list):
        for block in system:
            extra = set(block) - {"type", "text"} - _A2O_IGNORED
            if extra:
                raise refuse(f"system.{sorted(extra)[0]}", "unknown system block field")
    return text_of_blocks(system, "system")
