"""What the simulated model answers: deterministic text or a tool call, from the request.

The same request and seed always give the same answer. In ``lorem`` mode the text is
drawn from a word list with a generator seeded by the seed and the prompt; in ``echo``
mode the answer is the last user message's text (handy for asserting what reached the
provider). A tool call is made when tools are offered, the last message is not a tool
result, and either ``tool_choice`` forces one or the last user message names a tool.
Stop sequences and the token limit cut the answer as a real provider does.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

_WORDS = [
    "recovery",
    "backup",
    "replica",
    "region",
    "failover",
    "snapshot",
    "restore",
    "drill",
    "primary",
    "secondary",
    "latency",
    "token",
    "stream",
    "model",
    "provider",
    "answer",
    "request",
    "budget",
    "health",
    "probe",
    "quorum",
    "journal",
    "archive",
    "vector",
    "index",
    "window",
    "target",
    "objective",
    "point",
    "time",
    "data",
    "system",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "that",
    "it",
    "by",
    "from",
    "this",
]

_TOKEN_RE = re.compile(r"\s*\S+|\s+$")


@dataclass(slots=True)
class Reply:
    """The answer to send: text tokens and/or one tool call, why it stopped, usage."""

    tokens: list[str] = field(default_factory=list)
    tool: dict[str, Any] | None = None  # {"name", "arguments" (JSON text), "input" (dict)}
    stop: str = "end"  # end | stop_sequence | max_tokens | tool
    stop_sequence: str | None = None
    input_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) + (len(self.tool_pieces()) if self.tool else 0)

    def tool_pieces(self) -> list[str]:
        """The tool arguments JSON in a few pieces, as providers stream it."""
        if not self.tool:
            return []
        args = str(self.tool["arguments"])
        step = max(1, len(args) // 3 + 1)
        return [args[i : i + step] for i in range(0, len(args), step)]


def tokenize(text: str) -> list[str]:
    """Split into word tokens that join back to the text (leading space kept on each)."""
    return _TOKEN_RE.findall(text)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if isinstance(block, dict):
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif "content" in block:
                parts.append(_text_of(block["content"]))
    return "\n".join(parts)


def _is_tool_result(dialect: str, message: dict[str, Any]) -> bool:
    if dialect == "openai":
        return message.get("role") == "tool"
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _forced_tool(dialect: str, choice: Any, names: list[str]) -> str | None:
    if dialect == "openai":
        if choice == "required":
            return names[0]
        if isinstance(choice, dict):
            return str((choice.get("function") or {}).get("name"))
        return None
    if isinstance(choice, dict):
        if choice.get("type") == "any":
            return names[0]
        if choice.get("type") == "tool":
            return str(choice.get("name"))
    return None


def _example(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "sim"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _example(v) for k, v in props.items()}
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(
        str(kind), "sim"
    )


def make_reply(dialect: str, body: dict[str, Any], *, seed: int, mode: str) -> Reply:
    """The deterministic answer to a chat request of ``dialect``."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    last_text = _text_of(last.get("content"))
    all_text = " ".join(_text_of(m.get("content")) for m in messages)
    system = body.get("system")
    if system:
        all_text += " " + _text_of(system)
    reply = Reply(input_tokens=max(1, len(tokenize(all_text))))

    tools = body.get("tools") or []
    if tools and not _is_tool_result(dialect, last) and body.get("tool_choice") not in ("none",):
        if dialect == "openai":
            specs = {t["function"]["name"]: t["function"].get("parameters") for t in tools}
        else:
            specs = {t["name"]: t.get("input_schema") for t in tools if "name" in t}
        names = list(specs)
        chosen = _forced_tool(dialect, body.get("tool_choice"), names)
        if chosen is None:
            chosen = next((n for n in names if n in last_text), None)
        if chosen is not None:
            args = _example(specs.get(chosen) or {"type": "object"})
            if not isinstance(args, dict):
                args = {}
            reply.tool = {
                "name": chosen,
                "input": args,
                "arguments": json.dumps(args, separators=(",", ":")),
            }
            reply.stop = "tool"
            return reply

    if mode == "echo":
        text = last_text or "(empty)"
    else:
        digest = hashlib.blake2b(f"{seed}\0{all_text}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        words = [rng.choice(_WORDS) for _ in range(8 + rng.randrange(17))]
        words[0] = words[0].capitalize()
        text = " ".join(words) + "."

    stops = body.get("stop_sequences") if dialect == "anthropic" else body.get("stop")
    if isinstance(stops, str):
        stops = [stops]
    cut: tuple[int, str] | None = None
    for seq in stops or ():
        at = text.find(seq) if seq else -1
        if at >= 0 and (cut is None or at < cut[0]):
            cut = (at, seq)
    if cut is not None:
        text = text[: cut[0]]
        reply.stop, reply.stop_sequence = "stop_sequence", cut[1]
    reply.tokens = tokenize(text)
    limit = body.get("max_tokens")
    if dialect == "openai":
        limit = body.get("max_completion_tokens", limit)
    if isinstance(limit, int) and len(reply.tokens) > limit:
        reply.tokens = reply.tokens[:limit]
        reply.stop, reply.stop_sequence = "max_tokens", None
    return reply
