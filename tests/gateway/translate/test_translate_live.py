"""Translation end to end: client request -> upstream simulator -> client-dialect answer.

The translated request must pass the simulator's strict validation (unknown fields and
roles are rejected, as by the real APIs), and the translated answers and stream events
must validate against the official SDKs' own types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic.types as at
import openai.types.chat as ot
import pytest
from pydantic import TypeAdapter

from drkit.connectors.llm.client import Deadlines, UpstreamClient
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.connectors.llm.sse import Dialect, encode_json_sse, parse_sse
from drkit.errors import TranslationError
from drkit.gateway.accumulate import Accumulator
from drkit.gateway.translate import (
    StreamTranslator,
    prepare_request,
    stop_a2o,
    stop_o2a,
    usage_a2o,
    usage_o2a,
)

DEADLINES = Deadlines(connect=2, first_token=5, stream_idle=5, total=10)
ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(at.RawMessageStreamEvent)
PAIRS = [
    ("openai", "anthropic"),
    ("anthropic", "openai"),
    ("openai", "openai"),
    ("anthropic", "anthropic"),
]


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, ProviderSimulator]]:
    with ProviderSimulator("openai", seed=5) as o, ProviderSimulator("anthropic", seed=5) as a:
        o.state.mode = a.state.mode = "echo"
        yield {"openai": o, "anthropic": a}


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient() as c:
        yield c


def request(client: Dialect, *, tools: bool = False) -> dict[str, Any]:
    text = "call get_weather now" if tools else "the quick brown fox jumps"
    if client == "openai":
        body: dict[str, Any] = {
            "model": "assistant",
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
            "max_completion_tokens": 50,
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ]
        return body
    body = {
        "model": "assistant",
        "system": "sys",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    }
    if tools:
        body["tools"] = [
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ]
    return body


def answer_of(dialect: Dialect, body: dict[str, Any]) -> tuple[str, str | None, str]:
    """(text, tool arguments JSON, stop) of a client-dialect response."""
    if dialect == "openai":
        resp = ot.ChatCompletion.model_validate(body)
        msg = resp.choices[0].message
        args = msg.tool_calls[0].function.arguments if msg.tool_calls else None  # type: ignore[union-attr]
        return msg.content or "", args, resp.choices[0].finish_reason
    message = at.Message.model_validate(body)
    text = "".join(b.text for b in message.content if b.type == "text")
    tool = next((b for b in message.content if b.type == "tool_use"), None)
    args = json.dumps(tool.input, separators=(",", ":")) if tool else None
    return text, args, str(message.stop_reason)


def fold_stream(
    dialect: Dialect, events: list[tuple[str | None, dict[str, Any]]]
) -> tuple[str, str | None, str]:
    """Validate each client event with the SDK types and fold into (text, args, stop)."""
    text, args, stop = "", None, ""
    if dialect == "openai":
        assert events[-1] == ("done", {})
        for name, data in events[:-1]:
            assert name is None
            chunk = ot.ChatCompletionChunk.model_validate(data)
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or ():
                    args = (args or "") + (call.function.arguments or "")  # type: ignore[union-attr]
                stop = choice.finish_reason or stop
        return text, args, stop
    assert events[-1][0] == "message_stop"
    for name, data in events:
        if name == "ping":  # the SDK skips pings
            continue
        ev = ANTHROPIC_EVENT.validate_python(data)
        assert ev.type == name
        if ev.type == "content_block_delta":
            if ev.delta.type == "text_delta":
                text += ev.delta.text
            elif ev.delta.type == "input_json_delta":
                args = (args or "") + ev.delta.partial_json
        elif ev.type == "message_delta":
            stop = str(ev.delta.stop_reason)
    return text, args, stop


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool"])
@pytest.mark.parametrize(("client_d", "upstream_d"), PAIRS)
async def test_non_streaming(
    sims: dict[str, ProviderSimulator],
    client: UpstreamClient,
    client_d: Dialect,
    upstream_d: Dialect,
    tools: bool,
) -> None:
    sim = sims[upstream_d]
    up = prepare_request(
        request(client_d, tools=tools),
        client=client_d,
        upstream=upstream_d,
        model="up-model",
        stream=True,
    )
    # the gateway's non-streaming path: upstream streams, the client-dialect events are
    # folded into one response (upstream calls always stream)
    translator = StreamTranslator(
        upstream_d, client_d, model="assistant", include_usage=True, created=1
    )
    acc = Accumulator(client_d)
    async with client.stream(
        dialect=upstream_d,
        base_url=sim.base_url,
        body=up,
        deadlines=DEADLINES,
        api_key=None,
        headers={"authorization": "Bearer k", "x-api-key": "k"},
    ) as stream:
        async for ev in stream:
            for event in translator.feed(ev):
                acc.feed(event)
    assert acc.terminal
    out = acc.result()
    text, args, stop = answer_of(client_d, out)
    if tools:
        assert args == '{"city":"sim"}'
        assert stop in ("tool_calls", "tool_use")
    else:
        assert text == "the quick brown fox jumps"
        assert stop in ("stop", "end_turn")
    assert out["model"] == "assistant"


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool"])
@pytest.mark.parametrize(("client_d", "upstream_d"), PAIRS)
async def test_streaming(
    sims: dict[str, ProviderSimulator],
    client: UpstreamClient,
    client_d: Dialect,
    upstream_d: Dialect,
    tools: bool,
) -> None:
    sim = sims[upstream_d]
    up = prepare_request(
        request(client_d, tools=tools),
        client=client_d,
        upstream=upstream_d,
        model="up-model",
        stream=True,
    )
    translator = StreamTranslator(upstream_d, client_d, model="assistant", include_usage=True)
    out: list[tuple[str | None, dict[str, Any]]] = []
    held = 0
    async with client.stream(
        dialect=upstream_d,
        base_url=sim.base_url,
        body=up,
        deadlines=DEADLINES,
        headers={"authorization": "Bearer k", "x-api-key": "k"},
    ) as stream:
        async for ev in stream:
            events = translator.feed(ev)
            if not translator.first_content:
                held += len(events)
            out += events
    assert translator.done
    assert translator.first_content
    assert held >= 1  # the start events come before the first content token
    text, args, stop = fold_stream(client_d, out)
    if tools:
        assert args == '{"city":"sim"}'
        assert stop in ("tool_calls", "tool_use")
    else:
        assert text == "the quick brown fox jumps"
        assert stop in ("stop", "end_turn")
    if client_d == "openai":
        usage = out[-2][1]["usage"]
        assert usage["completion_tokens"] > 0
        assert usage["prompt_tokens"] > 0


def test_cut_stream_never_looks_complete() -> None:
    raw = (
        b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    )
    t = StreamTranslator("openai", "anthropic")
    out = [e for ev in parse_sse(raw) for e in t.feed(ev)]
    assert t.first_content
    assert not t.done
    assert "message_stop" not in [name for name, _ in out]
    assert "message_delta" not in [name for name, _ in out]
    t2 = StreamTranslator("anthropic", "openai")
    raw2 = b"".join(
        encode_json_sse(data, data["type"])
        for data in [
            {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {}}},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        ]
    )
    out2 = [e for ev in parse_sse(raw2) for e in t2.feed(ev)]
    assert not t2.done
    assert all(c["choices"][0]["finish_reason"] is None for n, c in out2 if n is None)


def test_untranslatable_stream_content_is_refused() -> None:
    raw = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"thinking","thinking":""}}\n\n'
    )
    t = StreamTranslator("anthropic", "openai")
    with pytest.raises(TranslationError, match="thinking"):
        t.feed(parse_sse(raw)[0])
    second = b'data: {"choices":[{"index":1,"delta":{"content":"x"}}]}\n\n'
    with pytest.raises(TranslationError, match="second choice"):
        StreamTranslator("openai", "anthropic").feed(parse_sse(second)[0])


@pytest.mark.parametrize(
    ("anthropic_stop", "openai_finish", "back"),
    [
        ("end_turn", "stop", "end_turn"),
        ("stop_sequence", "stop", "end_turn"),
        ("max_tokens", "length", "max_tokens"),
        ("tool_use", "tool_calls", "tool_use"),
        ("refusal", "content_filter", "refusal"),
    ],
)
def test_stop_reasons(anthropic_stop: str, openai_finish: str, back: str) -> None:
    assert stop_a2o(anthropic_stop) == openai_finish
    assert stop_o2a(openai_finish) == back


def test_usage_with_cache() -> None:
    a = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90}
    o = usage_a2o(a)
    assert o == {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "total_tokens": 105,
        "prompt_tokens_details": {"cached_tokens": 90},
    }
    assert usage_o2a(o) == a


@pytest.mark.parametrize("include_usage", [False, True])
def test_openai_passthrough_usage_only_when_asked(include_usage: bool) -> None:
    raw = (
        b"".join(
            encode_json_sse(data)
            for data in [
                {
                    "id": "c",
                    "model": "gpt",
                    "choices": [{"index": 0, "delta": {"content": "x"}}],
                    "usage": None,
                },
                {"id": "c", "model": "gpt", "choices": [], "usage": {"total_tokens": 3}},
            ]
        )
        + b"data: [DONE]\n\n"
    )
    t = StreamTranslator("openai", "openai", model="assistant", include_usage=include_usage)
    out = [e for ev in parse_sse(raw) for e in t.feed(ev)]
    assert t.done
    assert out[0][1]["model"] == "assistant"
    if include_usage:
        assert len(out) == 3
        assert out[1][1]["usage"] == {"total_tokens": 3}
    else:
        assert [name for name, _ in out] == [None, "done"]
        assert "usage" not in out[0][1]
