"""What the gateway needs to know about each wire dialect's *client-side* shapes.

Events inside the gateway are ``(name, data)`` pairs in the client's dialect: for
OpenAI ``name`` is None for a chunk and ``"done"`` for the ``[DONE]`` sentinel; for
Anthropic it is the event type (``message_start``, ``content_block_delta``, ...).
This module encodes them as SSE, builds error bodies and in-stream error events, and
says which event carries the first content token and which one ends a stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from drkit.connectors.llm.error_types import anthropic_error_type, openai_error
from drkit.gateway.config import Dialect

#: one stream event as the gateway handles it: (SSE event name or None, JSON payload);
#: the one definition (translate/stream.py had its own)
Event = tuple[str | None, dict[str, Any]]

DONE: Event = ("done", {})


class WireChunk(dict[str, Any]):
    """An event's data that carries its own JSON text (:attr:`wire`): the upstream's
    bytes, passed on without a re-encoding when client and upstream speak the same
    dialect (:mod:`drkit.gateway.translate.stream`). Whoever changes the data makes a
    plain ``dict`` of it (as the Splicer does), never edits it in place."""

    __slots__ = ("wire",)

    wire: bytes


def encode_sse(dialect: Dialect, event: Event) -> bytes:
    name, data = event
    if dialect == "openai":
        if name == "done":
            return b"data: [DONE]\n\n"
        if type(data) is WireChunk:
            return b"data: " + data.wire + b"\n\n"
        return b"data: " + orjson.dumps(data) + b"\n\n"
    text = data.wire if type(data) is WireChunk else orjson.dumps(data)
    return b"event: " + str(name).encode() + b"\ndata: " + text + b"\n\n"


def encode_batch(dialect: Dialect, events: list[Event]) -> bytes:
    """Several events as one write (what :func:`encode_sse` gives each, joined)."""
    if len(events) == 1:
        return encode_sse(dialect, events[0])
    if dialect == "openai":
        parts: list[bytes] = []
        for name, data in events:
            if name == "done":
                parts.append(b"data: [DONE]\n\n")
                continue
            parts.append(b"data: ")
            parts.append(data.wire if type(data) is WireChunk else orjson.dumps(data))
            parts.append(b"\n\n")
        return b"".join(parts)
    return b"".join([encode_sse(dialect, ev) for ev in events])


def error_type(dialect: Dialect, status: int) -> str:
    if dialect == "anthropic":
        return anthropic_error_type(status)
    return openai_error(status)[0]


def error_body(
    dialect: Dialect, status: int, message: str, code: str | None = None
) -> dict[str, Any]:
    """The error object a client of ``dialect`` expects for an HTTP error response."""
    if dialect == "anthropic":
        etype = anthropic_error_type(status)
        return {"type": "error", "error": {"type": etype, "message": message}}
    etype, default_code = openai_error(status)
    return {
        "error": {"message": message, "type": etype, "param": None, "code": code or default_code}
    }


def stream_error_event(dialect: Dialect, message: str, code: str) -> Event:
    """A typed in-stream error: the official SDKs raise on it instead of returning text."""
    if dialect == "anthropic":
        etype = anthropic_error_type(500)
        return ("error", {"type": "error", "error": {"type": etype, "message": message}})
    return (None, {"error": {"message": message, "type": openai_error(500)[0], "code": code}})


def error_message_of(body: Any) -> str | None:
    """The human message inside either dialect's error body (None if there is none)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return None


def is_terminal(dialect: Dialect, event: Event) -> bool:
    name = event[0]
    if dialect == "openai":
        return name == "done"
    return name == "message_stop"
