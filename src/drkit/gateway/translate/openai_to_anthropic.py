"""An OpenAI Chat Completions request as an Anthropic Messages request (pure, on dicts).

Every field is translated, accepted because it has no effect on the answer, or refused
(:func:`~drkit.gateway.translate.checks.refuse`); ``docs/gateway-translation.md`` is the
table of record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drkit.gateway.translate.checks import check_keys, refuse, text_of_blocks

#: ``max_tokens`` sent to Anthropic when an OpenAI client gives none (Anthropic requires it).
DEFAULT_MAX_TOKENS = 4096

#: The fields each OpenAI message (by role) and content part may carry to Anthropic.
_O_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}
_O_PART_KEYS = {"text": {"type", "text"}, "image_url": {"type", "image_url"}}

_O2A_DIRECT = ("top_p", "stream")


def _image_o2a(part: Mapping[str, Any], field: str) -> dict[str, Any]:
    url = str((part.get("image_url") or {}).get("url", ""))
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media = head[5:].split(";")[0]
        if ";base64" not in head:
            raise refuse(field, "only base64 data URLs can be translated")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise refuse(field, "an image URL must be https:// or a base64 data: URL")


def _user_content_o2a(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise refuse(field, "expected a string or a list of content parts")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        check_keys(
            part,
            _O_PART_KEYS.get(str(part.get("type"))) if isinstance(part, dict) else None,
            f"{field}[{j}]",
            "no Anthropic equivalent",
        )
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            if (part.get("image_url") or {}).get("detail") not in (None, "auto"):
                raise refuse(f"{field}[{j}].image_url.detail", "Anthropic has no image detail")
            blocks.append(_image_o2a(part, f"{field}[{j}]"))
        else:
            raise refuse(f"{field}[{j}]", f"content part {kind!r} has no Anthropic equivalent")
    return blocks


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append blocks, merging with the previous message of the same role (strict alternation)."""
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _messages_o2a(messages: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(messages, list):
        raise refuse("messages", "expected a list")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        field = f"messages[{i}]"
        role = msg.get("role")
        check_keys(
            msg,
            _O_MESSAGE_KEYS.get(role) if isinstance(msg, dict) else None,
            field,
            "no Anthropic equivalent",
        )
        if msg.get("name"):
            raise refuse(f"{field}.name", "Anthropic messages have no participant names")
        if role in ("system", "developer"):
            if out:
                raise refuse(field, f"a {role} message after the conversation started")
            system.append(text_of_blocks(msg.get("content"), f"{field}.content"))
        elif role == "user":
            _append(out, "user", _user_content_o2a(msg.get("content"), f"{field}.content"))
        elif role == "assistant":
            if msg.get("refusal"):
                raise refuse(f"{field}.refusal", "Anthropic has no refusal field")
            if msg.get("audio") or msg.get("function_call"):
                raise refuse(field, "audio and legacy function_call have no Anthropic equivalent")
            blocks: list[dict[str, Any]] = []
            content = msg.get("content")
            if content:
                text = text_of_blocks(content, f"{field}.content")
                if text:
                    blocks.append({"type": "text", "text": text})
            for j, call in enumerate(msg.get("tool_calls") or ()):
                cfield = f"{field}.tool_calls[{j}]"
                check_keys(call, {"id", "type", "function"}, cfield, "no Anthropic equivalent")
                fn = call.get("function") or {}
                check_keys(fn, {"name", "arguments"}, f"{cfield}.function", "unknown field")
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    raise refuse(
                        f"{field}.tool_calls[{j}].function.arguments", "not valid JSON"
                    ) from None
                if not isinstance(args, dict):
                    raise refuse(f"{field}.tool_calls[{j}].function.arguments", "not a JSON object")
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": args,
                    }
                )
            if not blocks:
                raise refuse(field, "an empty assistant message")
            _append(out, "assistant", blocks)
        elif role == "tool":
            text = text_of_blocks(msg.get("content"), f"{field}.content")
            result = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id"),
                "content": text,
            }
            _append(out, "user", [result])
        else:
            raise refuse(f"{field}.role", f"role {role!r} has no Anthropic equivalent")
    # tool results must come before other content of the same user turn
    for msg in out:
        if msg["role"] == "user":
            msg["content"].sort(key=lambda b: b["type"] != "tool_result")
        if len(msg["content"]) == 1 and msg["content"][0]["type"] == "text":
            msg["content"] = msg["content"][0]["text"]
    return system, out


def _tools_o2a(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools or ()):
        if tool.get("type") != "function":
            raise refuse(f"tools[{i}]", f"tool type {tool.get('type')!r} has no Anthropic twin")
        fn = tool.get("function") or {}
        if fn.get("strict"):
            raise refuse(f"tools[{i}].function.strict", "Anthropic has no strict tool schemas")
        item: dict[str, Any] = {
            "name": fn.get("name"),
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            item["description"] = fn["description"]
        out.append(item)
    return out


def _tool_choice_o2a(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise refuse("tool_choice", f"unknown tool_choice {choice!r}")


def _zero(value: Any) -> bool:
    return value is None or value == 0 or value == {} or value is False


def openai_to_anthropic(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI Chat Completions request as an Anthropic Messages request."""
    out: dict[str, Any] = {}
    max_tokens: Any = None
    for key, value in body.items():
        if key in ("model", "messages"):
            continue
        if key in _O2A_DIRECT:
            if value is not None:
                out[key] = value
        elif key == "temperature":
            if value is not None:
                if value > 1:
                    raise refuse("temperature", f"{value} is above Anthropic's maximum of 1")
                out["temperature"] = value
        elif key in ("max_tokens", "max_completion_tokens"):
            if value is not None:
                max_tokens = value
        elif key == "stop":
            if value:
                stops = [value] if isinstance(value, str) else list(value)
                if any(not str(seq).strip() for seq in stops):
                    raise refuse(
                        "stop", "Anthropic rejects empty or whitespace-only stop sequences"
                    )
                out["stop_sequences"] = stops
        elif key == "tools":
            if value:
                out["tools"] = _tools_o2a(value)
        elif key == "tool_choice":
            if value is not None:
                out["tool_choice"] = _tool_choice_o2a(value)
        elif key == "parallel_tool_calls":
            pass  # applied below, once tools and tool_choice are known
        elif key == "n":
            if value not in (None, 1):
                raise refuse("n", "Anthropic returns one choice per request (n must be 1)")
        elif key in ("logprobs", "top_logprobs"):
            if value:
                raise refuse(key, "Anthropic does not return log probabilities")
        elif key in ("presence_penalty", "frequency_penalty", "logit_bias", "seed"):
            if not _zero(value):
                raise refuse(key, "Anthropic has no equivalent sampling control")
        elif key == "user":
            if value:
                out["metadata"] = {"user_id": value}
        elif key == "stream_options":
            extra = set(value or {}) - {"include_usage"}
            if extra:
                raise refuse(f"stream_options.{sorted(extra)[0]}", "no Anthropic equivalent")
        elif key == "response_format":
            if value and value.get("type") != "text":
                raise refuse("response_format", f"{value.get('type')!r} output is OpenAI-only")
        elif key == "store":
            if value:
                raise refuse("store", "stored completions are OpenAI-only")
        elif key == "modalities":
            if value and list(value) != ["text"]:
                raise refuse("modalities", "only text output can be translated")
        else:
            if value is not None:
                raise refuse(key, "no Anthropic Messages equivalent")
    if body.get("parallel_tool_calls") is False and out.get("tools"):
        choice = out.setdefault("tool_choice", {"type": "auto"})
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    system, messages = _messages_o2a(body.get("messages"))
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    out["max_tokens"] = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    return out
