"""Streaming: upstream SSE events in one dialect -> client events in the other.

A :class:`StreamTranslator` is fed the upstream's events one at a time and returns
the client-dialect events to send, as ``(name, data)`` pairs (the gateway's
``drkit.gateway.dialects.Event``): for OpenAI ``name`` is None for a chunk and
``"done"`` for ``[DONE]``; for Anthropic it is the event type. It tracks when the
first content token went out (:attr:`StreamTranslator.first_content`), so the gateway
can hold everything back until then, and whether the upstream's final event arrived
(:attr:`StreamTranslator.done`).

What cannot be carried (an Anthropic ``thinking`` block to an OpenAI client, a second
choice) raises :class:`~drkit.errors.TranslationError` instead of vanishing; an event of
the wrong shape raises ``UpstreamError(reason="malformed")`` (the provider's fault).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from drkit.connectors.llm.sse import DONE, Dialect, SSEEvent, carries_content
from drkit.errors import TranslationError, UpstreamError
from drkit.gateway.dialects import Event, WireChunk
from drkit.gateway.translate.responses import stop_a2o, stop_o2a, usage_a2o, usage_o2a


def event_of(dialect: Dialect, ev: SSEEvent) -> Event:
    """An upstream SSE event as a ``(name, data)`` pair of the same dialect."""
    if dialect == "openai":
        if ev.data == DONE:
            return ("done", {})
        return (None, ev.json())
    data = ev.json()
    name = ev.event or (data.get("type") if isinstance(data, dict) else None)
    return (name, data)


def _client_content(dialect: Dialect, event: Event) -> bool:
    name, data = event
    return isinstance(data, dict) and carries_content(dialect, name, data)


class StreamTranslator:
    """Stateful translation of one upstream stream into client-dialect events.

    ``model`` (optional) replaces the model name the client sees; ``include_usage``
    makes an OpenAI client get the final usage chunk (``stream_options.include_usage``).
    """

    def __init__(
        self,
        upstream: Dialect,
        client: Dialect,
        *,
        model: str | None = None,
        include_usage: bool = False,
        created: int = 0,
    ) -> None:
        self.upstream: Dialect = upstream
        self.client: Dialect = client
        self.model = model
        self.include_usage = include_usage
        self.created = created
        #: True once an event carrying content (text, tool call) has been returned.
        self.first_content = False
        #: True once the upstream's final event (message_stop / [DONE]) was fed.
        self.done = False
        # shared state
        self._id: str = ""
        self._model: str = model or ""
        self._started = False
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, Any] = {}
        # anthropic upstream -> openai client
        self._block_tool: dict[int, int] = {}  # anthropic block index -> openai tool index
        # openai upstream -> anthropic client
        self._open_block: int | None = None
        self._open_kind: str | None = None
        self._next_block = 0
        self._tool_block: dict[int, int] = {}  # openai tool index -> anthropic block index
        # the same dialect: events passed on as the upstream's bytes (_wire_chunk)
        self._wire = upstream == client
        self._model_field = b'"model":' + orjson.dumps(model) if model else b""
        self._upstream_field: tuple[str, bytes] = ("", b"")

    def feed(self, ev: SSEEvent) -> list[Event]:
        """Translate one upstream event; returns zero or more client events."""
        if self.done:
            return []
        if self._wire and ev.raw is not None:
            wired = (
                self._wire_chunk(ev.raw, ev.json())
                if self.client == "openai"
                else self._wire_event(ev.raw, ev)
            )
            if wired is not None:
                if not self.first_content and _client_content(self.client, wired):
                    self.first_content = True
                return [wired]
        try:
            out = self._translate(event_of(self.upstream, ev))
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # JSON of the wrong shape from the provider: its fault, like bad JSON
            raise UpstreamError(
                f"{self.upstream} stream event of an unexpected shape ({type(exc).__name__})",
                status=502,
                retryable=True,
                reason="malformed",
            ) from exc
        if not self.first_content:
            for event in out:
                if _client_content(self.client, event):
                    self.first_content = True
                    break
        return out

    def _translate(self, event: Event) -> list[Event]:
        if self.upstream == self.client:
            return self._passthrough(event)
        if self.upstream == "anthropic":
            return self._a2o(event)
        return self._o2a(event)

    # --- same dialect ------------------------------------------------------------------

    def _wire_event(self, raw: bytes, ev: SSEEvent) -> Event | None:
        """An Anthropic event passed on as the upstream's bytes (what :meth:`_passthrough`
        returns unchanged: all but ``message_start``, which carries the model, and
        ``message_stop``, which ends the stream)."""
        data = ev.json()
        if not isinstance(data, dict):
            return None
        name = ev.event or data.get("type")
        if not isinstance(name, str) or name in ("message_start", "message_stop"):
            return None
        chunk = WireChunk(data)
        chunk.wire = raw
        return (name, chunk)

    def _wire_chunk(self, raw: bytes, data: Any) -> Event | None:
        """An OpenAI chunk passed on as the upstream's bytes, its model renamed and its
        ``"usage":null`` dropped in them: what :meth:`_passthrough` makes of it, without a
        re-encoding. None where that cannot be done safely (the chunk then takes the slow
        path): a field not written as one plain ``"key":value`` in the bytes (an escape
        could hide the top-level key, a second one could be taken for it), usage to keep
        out that is not null."""
        if not isinstance(data, dict):
            return None
        # an escape could hide a top-level key from the byte search: no rewrite then
        escaped = b"\\u" in raw
        chunk = WireChunk(data)
        if not self.include_usage and "usage" in data:
            # the upstream was asked for usage, the client was not: OpenAI then sends
            # "usage":null in every chunk (the one with the figures takes the slow path)
            if data["usage"] is not None or not data.get("choices"):
                return None
            if escaped or raw.count(b'"usage"') != 1:
                return None
            if b',"usage":null' in raw:
                raw = raw.replace(b',"usage":null', b"", 1)
            elif b'"usage":null,' in raw:
                raw = raw.replace(b'"usage":null,', b"", 1)
            else:
                return None
            del chunk["usage"]
        model = self.model
        if model and "model" in data and data["model"] != model:
            upstream = data["model"]
            if not isinstance(upstream, str) or escaped or raw.count(b'"model"') != 1:
                return None
            name, field = self._upstream_field
            if name != upstream:
                field = b'"model":' + orjson.dumps(upstream)
                self._upstream_field = (upstream, field)
            if field not in raw:
                return None  # written another way ("model": "x", escapes)
            raw = raw.replace(field, self._model_field, 1)
            chunk["model"] = model
        chunk.wire = raw
        return (None, chunk)

    def _passthrough(self, event: Event) -> list[Event]:
        name, data = event
        if self.client == "openai":
            if name == "done":
                self.done = True
                return [event]
            if not self.include_usage and "usage" in data:
                # the gateway asked upstream for usage; a client that did not gets none:
                # an extra chunk with no choices breaks clients that read choices[0]
                if not data.get("choices"):
                    return []
                data = {k: v for k, v in data.items() if k != "usage"}
            if self.model and "model" in data:
                data = {**data, "model": self.model}
            return [(name, data)]
        if name == "ping":
            return [event]
        if name == "message_stop":
            self.done = True
        elif name == "message_start" and self.model:
            data = {**data, "message": {**data.get("message", {}), "model": self.model}}
        return [(name, data)]

    # --- Anthropic upstream -> OpenAI client ---------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Event:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return (None, chunk)

    def _a2o(self, event: Event) -> list[Event]:
        name, data = event
        if name == "message_start":
            msg = data.get("message") or {}
            self._id = str(msg.get("id") or "")
            if not self.model:
                self._model = str(msg.get("model") or "")
            self._usage = dict(msg.get("usage") or {})
            self._started = True
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if name == "content_block_start":
            block = data.get("content_block") or {}
            kind = block.get("type")
            if kind == "text":
                text = block.get("text") or ""
                return [self._chunk({"content": text})] if text else []
            if kind == "tool_use":
                tool = len(self._block_tool)
                self._block_tool[int(data.get("index", 0))] = tool
                call = {
                    "index": tool,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                out = [self._chunk({"tool_calls": [call]})]
                if block.get("input"):
                    args = json.dumps(block["input"], separators=(",", ":"))
                    out.append(
                        self._chunk(
                            {"tool_calls": [{"index": tool, "function": {"arguments": args}}]}
                        )
                    )
                return out
            raise TranslationError(f"cannot stream a {kind!r} block to an OpenAI client")
        if name == "content_block_delta":
            delta = data.get("delta") or {}
            kind = delta.get("type")
            if kind == "text_delta":
                text = delta.get("text") or ""
                return [self._chunk({"content": text})] if text else []
            if kind == "input_json_delta":
                partial = delta.get("partial_json") or ""
                if not partial:
                    return []
                tool = self._block_tool.get(int(data.get("index", 0)), 0)
                return [
                    self._chunk(
                        {"tool_calls": [{"index": tool, "function": {"arguments": partial}}]}
                    )
                ]
            raise TranslationError(f"cannot stream a {kind!r} delta to an OpenAI client")
        if name == "message_delta":
            delta = data.get("delta") or {}
            self._stop = delta.get("stop_reason") or self._stop
            for key, value in (data.get("usage") or {}).items():
                if value is not None:
                    self._usage[key] = value
            return []
        if name == "message_stop":
            self.done = True
            out = [self._chunk({}, stop_a2o(self._stop) or "stop")]
            if self.include_usage:
                out.append(
                    (
                        None,
                        {
                            "id": self._id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self._model,
                            "choices": [],
                            "usage": usage_a2o(self._usage),
                        },
                    )
                )
            out.append(("done", {}))
            return out
        # content_block_stop, ping and unknown informational events carry nothing
        return []

    # --- OpenAI upstream -> Anthropic client ---------------------------------------------

    def _start(self, data: dict[str, Any]) -> list[Event]:
        if self._started:
            return []
        self._started = True
        self._id = str(data.get("id") or "")
        if not self.model:
            self._model = str(data.get("model") or "")
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close_block(self) -> list[Event]:
        if self._open_block is None:
            return []
        index = self._open_block
        self._open_block = None
        self._open_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(self, block: dict[str, Any], kind: str) -> list[Event]:
        out = self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open_block = index
        self._open_kind = kind
        out.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return out

    def _text(self, text: str) -> list[Event]:
        out: list[Event] = []
        if self._open_kind != "text":
            out += self._open({"type": "text", "text": ""}, "text")
        delta = {"type": "text_delta", "text": text}
        out.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": self._open_block, "delta": delta},
            )
        )
        return out

    def _o2a(self, event: Event) -> list[Event]:
        name, data = event
        if name == "done":
            self.done = True
            out = self._start({}) + self._close_block()
            usage = usage_o2a(self._usage) if self._usage else {"output_tokens": 0}
            out.append(
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {
                            "stop_reason": self._stop or "end_turn",
                            "stop_sequence": self._stop_sequence,
                        },
                        "usage": usage,
                    },
                )
            )
            out.append(("message_stop", {"type": "message_stop"}))
            return out
        out = self._start(data)
        if data.get("usage"):
            self._usage = dict(data["usage"])
        for choice in data.get("choices") or ():
            if choice.get("index", 0) != 0:
                raise TranslationError("cannot stream a second choice to an Anthropic client")
            delta = choice.get("delta") or {}
            if delta.get("refusal"):
                out += self._text(str(delta["refusal"]))
                self._stop = "refusal"
            if delta.get("content"):
                out += self._text(str(delta["content"]))
            for call in delta.get("tool_calls") or ():
                tool = int(call.get("index", 0))
                fn = call.get("function") or {}
                if tool not in self._tool_block:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": {},
                    }
                    out += self._open(block, "tool_use")
                    self._tool_block[tool] = self._open_block or 0
                if fn.get("arguments"):
                    delta_ev = {"type": "input_json_delta", "partial_json": fn["arguments"]}
                    out.append(
                        (
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": self._tool_block[tool],
                                "delta": delta_ev,
                            },
                        )
                    )
            if choice.get("finish_reason"):
                out += self._close_block()
                if self._stop != "refusal":
                    self._stop = stop_o2a(choice["finish_reason"])
        return out
