"""The providers' wire formats as the simulator speaks them: answers, stream events,
error bodies, and the request checks a real API would answer with a 400.

Pure functions (no I/O), used by :mod:`drkit.connectors.llm.simulator`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from drkit.connectors.llm.error_types import anthropic_error_type, openai_error
from drkit.connectors.llm.faults import Fault
from drkit.connectors.llm.replies import Reply
from drkit.connectors.llm.sse import Dialect, encode_json_sse, encode_sse

_OPENAI_FIELDS = frozenset(
    [
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
        "store",
        "metadata",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "service_tier",
        "web_search_options",
        "safety_identifier",
        "prompt_cache_key",
        "verbosity",
    ]
)
_ANTHROPIC_FIELDS = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    ]
)
_STOP_OPENAI = {
    "end": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool": "tool_calls",
}
_STOP_ANTHROPIC = {
    "end": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool": "tool_use",
}


# --- error bodies ------------------------------------------------------------------------


def error_response(dialect: Dialect, status: int, message: str, body: Any = None) -> Response:
    headers: dict[str, str] = {}
    if body is None:
        if dialect == "anthropic":
            etype = anthropic_error_type(status)
            body = {"type": "error", "error": {"type": etype, "message": message}}
        else:
            etype, code = openai_error(status)
            body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    if isinstance(body, str | bytes):
        return Response(body, status_code=status, media_type="application/json", headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def retry_headers(seconds: float) -> dict[str, str]:
    return {
        "retry-after": str(max(0, math.ceil(seconds))),
        "retry-after-ms": str(round(seconds * 1000)),
    }


# --- answers -----------------------------------------------------------------------------


def openai_body(body: dict[str, Any], reply: Reply, rid: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if reply.tool:
        message["tool_calls"] = [
            {
                "id": "call_" + rid[:16],
                "type": "function",
                "function": {"name": reply.tool["name"], "arguments": reply.tool["arguments"]},
            }
        ]
    else:
        message["content"] = reply.text
    out_tokens = reply.output_tokens
    return {
        "id": "chatcmpl-" + rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_sim",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _STOP_OPENAI[reply.stop],
            }
        ],
        "usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": out_tokens,
            "total_tokens": reply.input_tokens + out_tokens,
        },
    }


def anthropic_body(body: dict[str, Any], reply: Reply, rid: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.tool:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + rid[:20],
                "name": reply.tool["name"],
                "input": reply.tool["input"],
            }
        )
    else:
        content.append({"type": "text", "text": reply.text})
    return {
        "id": "msg_" + rid,
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": _STOP_ANTHROPIC[reply.stop],
        "stop_sequence": reply.stop_sequence,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def openai_events(body: dict[str, Any], reply: Reply, rid: str) -> list[tuple[bool, bytes]]:
    """(is_token, frame) pairs of an OpenAI stream, ending with ``[DONE]``."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": "chatcmpl-" + rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_sim",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return encode_json_sse(data)

    frames: list[tuple[bool, bytes]] = [
        (
            False,
            chunk(
                {"role": "assistant", "content": "" if not reply.tool else None, "refusal": None}
            ),
        )
    ]
    if reply.tool:
        call = {
            "index": 0,
            "id": "call_" + rid[:16],
            "type": "function",
            "function": {"name": reply.tool["name"], "arguments": ""},
        }
        frames.append((True, chunk({"tool_calls": [call]})))
        for piece in reply.tool_pieces():
            frames.append(
                (True, chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            )
    for token in reply.tokens:
        frames.append((True, chunk({"content": token})))
    frames.append((False, chunk({}, _STOP_OPENAI[reply.stop])))
    if include_usage:
        usage = {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }
        frames.append((False, encode_json_sse({**base, "choices": [], "usage": usage})))
    frames.append((False, encode_sse("[DONE]")))
    return frames


def anthropic_events(body: dict[str, Any], reply: Reply, rid: str) -> list[tuple[bool, bytes]]:
    """(is_token, frame) pairs of an Anthropic stream, ending with ``message_stop``."""

    def ev(name: str, data: dict[str, Any]) -> bytes:
        return encode_json_sse({"type": name, **data}, name)

    message: dict[str, Any] = {
        "id": "msg_" + rid,
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
    }
    frames: list[tuple[bool, bytes]] = [(False, ev("message_start", {"message": message}))]
    if reply.tool:
        block = {
            "type": "tool_use",
            "id": "toolu_" + rid[:20],
            "name": reply.tool["name"],
            "input": {},
        }
        frames.append((True, ev("content_block_start", {"index": 0, "content_block": block})))
        frames.append((False, ev("ping", {})))
        for piece in reply.tool_pieces():
            delta = {"type": "input_json_delta", "partial_json": piece}
            frames.append((True, ev("content_block_delta", {"index": 0, "delta": delta})))
    else:
        block = {"type": "text", "text": ""}
        frames.append((False, ev("content_block_start", {"index": 0, "content_block": block})))
        frames.append((False, ev("ping", {})))
        for token in reply.tokens:
            delta = {"type": "text_delta", "text": token}
            frames.append((True, ev("content_block_delta", {"index": 0, "delta": delta})))
    frames.append((False, ev("content_block_stop", {"index": 0})))
    stop = {"stop_reason": _STOP_ANTHROPIC[reply.stop], "stop_sequence": reply.stop_sequence}
    frames.append(
        (
            False,
            ev("message_delta", {"delta": stop, "usage": {"output_tokens": reply.output_tokens}}),
        )
    )
    frames.append((False, ev("message_stop", {})))
    return frames


MALFORMED_SSE = {
    "openai": b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": \n\n',
    "anthropic": b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n',
}


def stream_error_frame(dialect: Dialect, fault: Fault) -> bytes:
    status = fault.status
    message = fault.message or default_message(status)
    if dialect == "anthropic":
        etype = anthropic_error_type(status)
        return encode_json_sse(
            {"type": "error", "error": {"type": etype, "message": message}}, "error"
        )
    etype, code = openai_error(status)
    return encode_json_sse(
        {"error": {"message": message, "type": etype, "param": None, "code": code}}
    )


# --- validation --------------------------------------------------------------------------


def validate(dialect: Dialect, body: Any) -> str | None:
    """What a real provider would reject with a 400 (the subset that catches bugs)."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    allowed = _OPENAI_FIELDS if dialect == "openai" else _ANTHROPIC_FIELDS
    for key in body:
        if key not in allowed:
            if dialect == "openai":
                return f"Unrecognized request argument supplied: {key}"
            return f"{key}: Extra inputs are not permitted"
    if not body.get("model"):
        return "model: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required (a non-empty list)"
    temp = body.get("temperature")
    if temp is not None and not 0 <= temp <= (2 if dialect == "openai" else 1):
        return f"temperature: {temp} is out of range"
    if dialect == "anthropic":
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        for i, msg in enumerate(messages):
            if msg.get("role") not in ("user", "assistant"):
                return f'messages.{i}.role: Input should be "user" or "assistant"'
    else:
        for i, msg in enumerate(messages):
            if msg.get("role") not in ("system", "developer", "user", "assistant", "tool"):
                return f"messages[{i}].role: invalid role {msg.get('role')!r}"
        if body.get("n") not in (None, 1):
            return "n: the simulator returns one choice"
    return None


def default_message(status: int) -> str:
    return {
        400: "Invalid request (simulated)",
        500: "Internal server error (simulated)",
        502: "Bad gateway (simulated)",
        503: "Service unavailable (simulated)",
        529: "Overloaded",
    }.get(status, f"Simulated error {status}")
