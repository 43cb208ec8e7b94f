"""Request bodies: Anthropic Messages <-> OpenAI Chat Completions, refusing what has no twin.

Pure functions on dicts. Every field of the source request is either translated,
accepted because it has no effect on the answer (documented), or refused with a
:class:`~drkit.errors.TranslationError` naming the field and the reason. Nothing is
dropped silently. ``docs/gateway-translation.md`` is the table of record.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from drkit.connectors.llm.sse import Dialect
from drkit.errors import TranslationError

#: ``max_tokens`` sent to Anthropic when an OpenAI client gives none (Anthropic requires it).
DEFAULT_MAX_TOKENS = 4096

#: Keys a target's ``params`` may not override (they are the request itself).
PROTECTED_PARAMS = frozenset({"model", "messages", "stream", "system", "tools"})

_HINT = "remove the field, or route this model to a target of the same dialect"


def refuse(field: str, why: str, hint: str = _HINT) -> TranslationError:
    return TranslationError(f"cannot translate {field}: {why}", hint=hint)


#: The fields each Anthropic content block may carry into an OpenAI request.
_A_BLOCK_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
}
#: The fields each OpenAI message (by role) and content part may carry to Anthropic.
_O_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}
_O_PART_KEYS = {"text": {"type", "text"}, "image_url": {"type", "image_url"}}


def _check_keys(obj: Any, allowed: set[str] | None, field: str, why: str) -> None:
    """Refuse an object that is not a dict or that carries a field outside ``allowed``."""
    if not isinstance(obj, dict):
        raise refuse(field, "expected an object")
    if allowed is None:
        return
    extra = set(obj) - allowed
    if extra:
        raise refuse(f"{field}.{sorted(extra)[0]}", why)


def _check_block(block: Any, field: str) -> None:
    _check_keys(
        block,
        _A_BLOCK_KEYS.get(str(block.get("type"))) if isinstance(block, dict) else None,
        field,
        "no OpenAI equivalent",
    )
    if block.get("citations"):
        raise refuse(f"{field}.citations", "OpenAI Chat has no citations")


def _text_of_blocks(blocks: Any, field: str) -> str:
    """Join text blocks/parts into one string; refuse anything that is not text."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise refuse(field, "expected a string or a list of text blocks")
    parts: list[str] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise refuse(f"{field}[{i}]", f"content of type {kind!r} is only supported as text")
        _check_keys(block, {"type", "text", "cache_control"}, f"{field}[{i}]", "not a text field")
        parts.append(str(block.get("text", "")))
    return "".join(parts) if len(parts) == 1 else "\n\n".join(parts)


# --- Anthropic -> OpenAI -----------------------------------------------------------------

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
    return _text_of_blocks(content, field)


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
    return _text_of_blocks(system, "system")


# --- OpenAI -> Anthropic -----------------------------------------------------------------

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
        _check_keys(
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
        _check_keys(
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
            system.append(_text_of_blocks(msg.get("content"), f"{field}.content"))
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
                text = _text_of_blocks(content, f"{field}.content")
                if text:
                    blocks.append({"type": "text", "text": text})
            for j, call in enumerate(msg.get("tool_calls") or ()):
                cfield = f"{field}.tool_calls[{j}]"
                _check_keys(call, {"id", "type", "function"}, cfield, "no Anthropic equivalent")
                fn = call.get("function") or {}
                _check_keys(fn, {"name", "arguments"}, f"{cfield}.function", "unknown field")
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
            text = _text_of_blocks(msg.get("content"), f"{field}.content")
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
