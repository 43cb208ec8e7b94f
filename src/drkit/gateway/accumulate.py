"""Client-dialect stream events -> a complete response; splicing continuations.

The gateway always streams from upstream (so first-token and idle deadlines protect
non-streaming requests too) and, for a non-streaming client, folds the events into the
response object here. The same accumulator tracks the partial output of a stream so that
``on_stream_failure: continue`` can prefill it into the next target's request, and
:class:`Splicer` rewrites the continuation's events so the client sees one message.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from drkit.gateway.config import Dialect
from drkit.gateway.dialects import Event


class Accumulator:
    """Folds one dialect's stream events into that dialect's non-streaming response."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.terminal = False
        # openai
        self._meta: dict[str, Any] = {}
        self._text: list[str] = []
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        # anthropic
        self._message: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self.open_block: int | None = None

    def feed(self, event: Event) -> None:
        if self.dialect == "openai":
            self._feed_openai(event)
        else:
            self._feed_anthropic(event)

    # --- openai ---------------------------------------------------------------------------

    def _feed_openai(self, event: Event) -> None:
        name, chunk = event
        if name == "done":
            self.terminal = True
            return
        if not self._meta:
            self._meta = {k: chunk.get(k) for k in ("id", "created", "model")}
            if chunk.get("system_fingerprint") is not None:
                self._meta["system_fingerprint"] = chunk["system_fingerprint"]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text.append(delta["content"])
            for tc in delta.get("tool_calls") or ():
                slot = self._tools.setdefault(
                    int(tc.get("index", 0)),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["function"]["arguments"] += fn["arguments"]
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    # --- anthropic ------------------------------------------------------------------------

    def _feed_anthropic(self, event: Event) -> None:
        name, data = event
        if name == "message_start":
            self._message = copy.deepcopy(data.get("message") or {})
            self._message["content"] = []
        elif name == "content_block_start":
            idx = int(data.get("index", 0))
            self._blocks[idx] = copy.deepcopy(data.get("content_block") or {})
            self.open_block = idx
        elif name == "content_block_delta":
            idx = int(data.get("index", 0))
            block = self._blocks.setdefault(idx, {"type": "text", "text": ""})
            delta = data.get("delta") or {}
            kind = delta.get("type")
            if kind == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif kind == "input_json_delta":
                self._json.setdefault(idx, []).append(delta.get("partial_json", ""))
            elif kind == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif kind == "signature_delta":
                block["signature"] = delta.get("signature", "")
        elif name == "content_block_stop":
            idx = int(data.get("index", 0))
            if idx in self._json:
                raw = "".join(self._json.pop(idx))
                self._blocks[idx]["input"] = json.loads(raw) if raw else {}
            if self.open_block == idx:
                self.open_block = None
        elif name == "message_delta":
            delta = data.get("delta") or {}
            for k in ("stop_reason", "stop_sequence"):
                if k in delta:
                    self._message[k] = delta[k]
            if data.get("usage"):
                usage = dict(self._message.get("usage") or {})
                usage.update({k: v for k, v in data["usage"].items() if v is not None})
                self._message["usage"] = usage
        elif name == "message_stop":
            self.terminal = True

    # --- results --------------------------------------------------------------------------

    def text(self) -> str:
        if self.dialect == "openai":
            return "".join(self._text)
        return "".join(
            b.get("text", "") for _, b in sorted(self._blocks.items()) if b.get("type") == "text"
        )

    def text_only(self) -> bool:
        """True when the output so far is plain text (continuable by prefill)."""
        if self.dialect == "openai":
            return not self._tools
        return all(b.get("type") == "text" for b in self._blocks.values())

    def blocks_started(self) -> int:
        return len(self._blocks)

    def result(self) -> dict[str, Any]:
        if self.dialect == "openai":
            message: dict[str, Any] = {"role": "assistant", "content": self.text() or None}
            if self._tools:
                message["tool_calls"] = [self._tools[i] for i in sorted(self._tools)]
            out: dict[str, Any] = {
                "id": self._meta.get("id"),
                "object": "chat.completion",
                "created": self._meta.get("created"),
                "model": self._meta.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": self._finish,
                        "logprobs": None,
                    }
                ],
            }
            if "system_fingerprint" in self._meta:
                out["system_fingerprint"] = self._meta["system_fingerprint"]
            if self._usage is not None:
                out["usage"] = self._usage
            return out
        msg = dict(self._message)
        msg["content"] = [self._blocks[i] for i in sorted(self._blocks)]
        return msg


def prefill(dialect: Dialect, body: dict[str, Any], partial: str) -> dict[str, Any]:
    """``body`` with the partial answer as a trailing assistant turn to be continued."""
    out = dict(body)
    messages = list(body.get("messages") or [])
    if messages and messages[-1].get("role") == "assistant":
        last = dict(messages[-1])
        prior = last.get("content") or ""
        if isinstance(prior, list):  # anthropic content blocks: append a text block
            last["content"] = [*prior, {"type": "text", "text": partial}]
        else:
            last["content"] = str(prior) + partial
        messages[-1] = last
    else:
        messages.append({"role": "assistant", "content": partial})
    out["messages"] = messages
    return out


class Splicer:
    """Rewrites a continuation's events so they extend the message the client already has.

    OpenAI: drop role-only chunks, keep the original id/created/model. Anthropic: drop
    ``message_start``/``ping``, merge the continuation's first text block into the
    client's open text block, shift later block indices past the ones already sent.
    """

    def __init__(self, dialect: Dialect, sent: Accumulator) -> None:
        self.dialect = dialect
        self._meta = dict(sent._meta)
        self._merge = sent.open_block is not None
        opened = sent.blocks_started()
        self._offset = opened - 1 if self._merge else opened
        self._merge_index = sent.open_block

    def feed(self, event: Event) -> list[Event]:
        name, data = event
        if self.dialect == "openai":
            if name == "done":
                return [event]
            chunk = dict(data)
            chunk.update({k: v for k, v in self._meta.items() if v is not None})
            choices = []
            for c in chunk.get("choices") or ():
                delta = {k: v for k, v in (c.get("delta") or {}).items() if k != "role"}
                if delta or c.get("finish_reason"):
                    choices.append({**c, "delta": delta})
            if not choices and not chunk.get("usage"):
                return []
            chunk["choices"] = choices
            return [(name, chunk)]
        if name in ("message_start", "ping"):
            return []
        if name in ("content_block_start", "content_block_delta", "content_block_stop"):
            idx = int(data.get("index", 0))
            if self._merge and idx == 0:
                if name == "content_block_start":
                    if (data.get("content_block") or {}).get("type") == "text":
                        return []
                    # the continuation opened a non-text block: close the client's first
                    self._merge = False
                    self._offset += 1
                    stop: Event = (
                        "content_block_stop",
                        {"type": "content_block_stop", "index": self._merge_index},
                    )
                    return [stop, (name, {**data, "index": idx + self._offset})]
                return [(name, {**data, "index": self._merge_index})]
            return [(name, {**data, "index": idx + self._offset})]
        return [event]
