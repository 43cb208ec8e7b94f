"""Same-dialect OpenAI chunks passed on as the upstream's bytes (the fast path) against
the parse-and-re-encode path: for the same chunk streams, read in pieces split anywhere,
the client must get the same events.

The slow path is the same translator fed the same events without their raw bytes
(``SSEEvent.raw``), so every case compares the two paths of one implementation.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from drkit.connectors.llm.sse import Dialect, SSEEvent, SSEParser, parse_sse
from drkit.gateway.dialects import Event, WireChunk, encode_batch
from drkit.gateway.translate.stream import StreamTranslator

ROUTE = "assistant"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict:
    out: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "sim-large",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
    }
    out.update(extra)
    return out


TYPICAL = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Héllo wörld, 日本語 🎉"}),
    chunk({"content": ' say "model":"sim-large" \\u00e9'}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"model":"sim-large"}'}}]}),
    chunk({}, "stop"),
    {**chunk(), "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}},
]


#: what OpenAI (and the simulator) send when asked for usage: "usage":null in every chunk
WITH_NULL_USAGE = [{**c, "usage": None} if "usage" not in c else c for c in TYPICAL]


def compact(chunks: list[dict[str, Any]]) -> bytes:
    """What providers send: compact JSON, UTF-8, ``\\n`` line ends, then ``[DONE]``."""
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def python_json(chunks: list[dict[str, Any]]) -> bytes:
    """json.dumps defaults: spaces after separators and \\u escapes for non-ASCII."""
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


STREAMS: dict[str, bytes] = {
    "compact": compact(TYPICAL),
    "python json (spaces, \\u escapes)": python_json(TYPICAL),
    "crlf": compact(TYPICAL).replace(b"\n", b"\r\n"),
    "usage null in every chunk": compact(WITH_NULL_USAGE),
    "usage null first": compact([{"usage": None, **c} for c in TYPICAL[:5]]),
    "usage null spaced": python_json(WITH_NULL_USAGE),
    "usage null, a nested one too": compact(
        [{"x": {"a": 1, "usage": None}, **c} for c in WITH_NULL_USAGE]
    ),
    "usage null after text about it": compact(
        [chunk({"content": '"usage":null'}, usage=None), chunk({"content": ',"usage":null'})]
    ),
    "comments and keepalives": compact(TYPICAL[:2]).replace(b"\n\n", b"\n\n: keepalive\n\n", 1)
    + b":ping\n"
    + compact(TYPICAL[2:]),
    "model is the route's": compact([{**c, "model": ROUTE} for c in TYPICAL]),
    "no model": compact([{k: v for k, v in c.items() if k != "model"} for c in TYPICAL]),
    "model not a string": compact([{**c, "model": None} for c in TYPICAL]),
    "a nested model too": compact([chunk({"content": "x"}, extra={"model": "sim-large"})]),
    "model after another key named like it": compact([chunk({"content": "x"}, models=1)]),
    "invalid utf-8": compact(TYPICAL[:1])
    + b'data: {"id":"c","model":"sim-large","choices":[{"index":0,'
    b'"delta":{"content":"\xff\xfe"}}]}\n\n' + b"data: [DONE]\n\n",
    "data without a space": compact(TYPICAL[:2]).replace(b"data: ", b"data:"),
    "data over two lines": b'data: {"id":"c","model":"sim-large",\ndata: "choices":[]}\n\n'
    + compact(TYPICAL[1:2]),
    "model spaced, a nested one compact": b'data: {"id":"c","model" : "sim-large","choices":'
    b'[{"index":0,"delta":{"content":"hi","model":"sim-large"}}]}\n\n' + b"data: [DONE]\n\n",
    "escaped model key": b'data: {"id":"c","mod\\u0065l":"sim-large","choices":[{"index":0,'
    b'"delta":{"content":"hi","model":"sim-large"}}]}\n\n' + b"data: [DONE]\n\n",
}


#: compact JSON in: the very same bytes out
COMPACT = ("compact", "crlf", "comments and keepalives", "model is the route's")
COMPACT += ("usage null in every chunk", "usage null first")


def run(
    pieces: list[bytes], include_usage: bool, fast: bool, dialect: Dialect = "openai"
) -> tuple[bytes, list[Event]]:
    """The client's bytes and events for an upstream stream read in ``pieces``."""
    parser = SSEParser()
    st = StreamTranslator(dialect, dialect, model=ROUTE, include_usage=include_usage)
    out: list[bytes] = []
    events: list[Event] = []
    for piece in pieces:
        batch: list[Event] = []
        for ev in parser.feed(piece):
            if not fast:
                ev = SSEEvent(ev.data, ev.event, ev.id)  # no raw bytes: the slow path
            batch.extend(st.feed(ev))
        if batch:
            out.append(encode_batch(dialect, batch))
            events.extend(batch)
    return b"".join(out), events


def splits(data: bytes, seed: int) -> list[list[bytes]]:
    """The stream whole, split in two at every byte, and cut at random in many places."""
    cases = [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))]
    rng = random.Random(seed)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(2, 40))))
        cases.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return cases


def meaning(wire: bytes) -> list[tuple[str | None, Any]]:
    return [(ev.event, ev.json()) for ev in parse_sse(wire)]


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
@pytest.mark.parametrize("name", list(STREAMS))
def test_the_fast_path_gives_what_the_slow_path_gives(name: str, include_usage: bool) -> None:
    data = STREAMS[name]
    slow_wire, slow_events = run([data], include_usage, fast=False)
    assert slow_wire.endswith(b"data: [DONE]\n\n")
    for pieces in splits(data, seed=len(name)):
        fast_wire, fast_events = run(pieces, include_usage, fast=True)
        assert fast_events == slow_events  # what the accumulator and the splicer see
        assert meaning(fast_wire) == meaning(slow_wire)
        if name in COMPACT:
            assert fast_wire == slow_wire


def test_the_fast_path_is_taken_for_what_providers_send() -> None:
    _wire, events = run([STREAMS["compact"]], include_usage=True, fast=True)
    kinds = [type(data) is WireChunk for name, data in events if name != "done"]
    # all but the one whose bytes hold "\u" (a backslash in its text, here): an escape
    # could hide the top-level model key, so that one is re-encoded
    assert kinds == [True, True, False, True, True, True]
    assert all(data["model"] == ROUTE for name, data in events if name != "done")
    # a client that did not ask for usage, of an upstream that was asked: null usage goes
    _wire, events = run([STREAMS["usage null in every chunk"]], include_usage=False, fast=True)
    kinds = [type(data) is WireChunk for name, data in events if name != "done"]
    assert kinds == [True, True, False, True, True]  # the usage chunk itself is dropped
    assert all("usage" not in data for _name, data in events)


# --- Anthropic: every event but message_start (the model) and message_stop passes on --


def anthropic(events: list[dict[str, Any]], *, event_lines: bool = True) -> bytes:
    out = b""
    for ev in events:
        head = b"event: " + ev["type"].encode() + b"\n" if event_lines else b""
        out += head + b"data: " + orjson.dumps(ev) + b"\n\n"
    return out


MESSAGE = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "sim-large",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 0},
        },
    },
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Héllo"}},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": " 日本 🎉"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}},
    {"type": "message_stop"},
]

ANTHROPIC_STREAMS = {
    "compact": anthropic(MESSAGE),
    "crlf": anthropic(MESSAGE).replace(b"\n", b"\r\n"),
    "no event lines": anthropic(MESSAGE, event_lines=False),
    "comments and keepalives": anthropic(MESSAGE[:3]) + b": keepalive\n\n" + anthropic(MESSAGE[3:]),
    "python json": "".join(
        f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n" for ev in MESSAGE
    ).encode(),
}


@pytest.mark.parametrize("name", list(ANTHROPIC_STREAMS))
def test_anthropic_fast_path_gives_what_the_slow_path_gives(name: str) -> None:
    data = ANTHROPIC_STREAMS[name]
    slow_wire, slow_events = run([data], True, fast=False, dialect="anthropic")
    assert slow_events[-1][0] == "message_stop"
    for pieces in splits(data, seed=len(name)):
        fast_wire, fast_events = run(pieces, True, fast=True, dialect="anthropic")
        assert fast_events == slow_events
        assert meaning(fast_wire) == meaning(slow_wire)
        if name in ("compact", "crlf", "comments and keepalives", "no event lines"):
            assert fast_wire == slow_wire
    _wire, events = run([data], True, fast=True, dialect="anthropic")
    wired = [type(d) is WireChunk for _n, d in events]
    assert wired == ([False] * 8 if name == "crlf" else [False] + [True] * 6 + [False])
