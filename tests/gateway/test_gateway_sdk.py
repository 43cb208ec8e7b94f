"""The official SDKs, unchanged but for base_url, through the gateway to both dialects.

client dialect x target dialect x sync/async x streaming/not: both translation
directions and both passthroughs, on real uvicorn and real simulators.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest
from gwkit import CLIENT_KEY, Sims, chat_attempts, route_for

DIALECTS = ["openai", "anthropic"]
MESSAGES: list[Any] = [{"role": "user", "content": "Say something about failover."}]


def _openai_sync(client: openai.OpenAI, stream: bool) -> tuple[str, str | None, dict[str, str]]:
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="assistant", messages=MESSAGES, stream=True
        ) as raw:
            headers = dict(raw.headers)
            text, finish = "", None
            for chunk in raw.parse():
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
        return text, finish, headers
    raw_resp = client.chat.completions.with_raw_response.create(
        model="assistant", messages=MESSAGES
    )
    done = raw_resp.parse()
    return (
        done.choices[0].message.content or "",
        done.choices[0].finish_reason,
        dict(raw_resp.headers),
    )


def _openai_call(url: str, stream: bool, use_async: bool) -> tuple[str, str | None, dict[str, str]]:
    kw: dict[str, Any] = {"base_url": url + "/v1", "api_key": CLIENT_KEY, "max_retries": 0}
    if not use_async:
        client = openai.OpenAI(**kw)
        try:
            return _openai_sync(client, stream)
        finally:
            client.close()

    async def run() -> tuple[str, str | None, dict[str, str]]:
        aclient = openai.AsyncOpenAI(**kw)
        try:
            if stream:
                async with aclient.chat.completions.with_streaming_response.create(
                    model="assistant", messages=MESSAGES, stream=True
                ) as raw:
                    headers = dict(raw.headers)
                    text, finish = "", None
                    async for chunk in await raw.parse():
                        for choice in chunk.choices:
                            text += choice.delta.content or ""
                            finish = choice.finish_reason or finish
                return text, finish, headers
            raw_resp = await aclient.chat.completions.with_raw_response.create(
                model="assistant", messages=MESSAGES
            )
            done = raw_resp.parse()
            return (
                done.choices[0].message.content or "",
                done.choices[0].finish_reason,
                dict(raw_resp.headers),
            )
        finally:
            await aclient.close()

    return asyncio.run(run())


def _anthropic_call(
    url: str, stream: bool, use_async: bool
) -> tuple[str, str | None, dict[str, str]]:
    kw: dict[str, Any] = {"base_url": url, "api_key": CLIENT_KEY, "max_retries": 0}
    args: dict[str, Any] = {"model": "assistant", "max_tokens": 200, "messages": MESSAGES}
    if not use_async:
        with anthropic.Anthropic(**kw) as client:
            if stream:
                with client.messages.stream(**args) as s:
                    text = "".join(s.text_stream)
                    final = s.get_final_message()
                    headers = dict(s.response.headers)
                assert final.content[0].text == text  # type: ignore[union-attr]
                return text, final.stop_reason, headers
            raw = client.messages.with_raw_response.create(**args)
            msg = raw.parse()
            return msg.content[0].text, msg.stop_reason, dict(raw.headers)  # type: ignore[union-attr]

    async def run() -> tuple[str, str | None, dict[str, str]]:
        aclient = anthropic.AsyncAnthropic(**kw)
        try:
            if stream:
                async with aclient.messages.stream(**args) as s:
                    text = "".join([t async for t in s.text_stream])
                    final = await s.get_final_message()
                    headers = dict(s.response.headers)
                return text, final.stop_reason, headers
            raw = await aclient.messages.with_raw_response.create(**args)
            msg = await raw.parse()
            return msg.content[0].text, msg.stop_reason, dict(raw.headers)  # type: ignore[union-attr]
        finally:
            await aclient.close()

    return asyncio.run(run())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("client", DIALECTS)
def test_sdk_through_gateway(
    sims: Sims, gateway_for: Any, client: str, target: str, use_async: bool, stream: bool
) -> None:
    gw = gateway_for(route_for(sims.primary(target)))
    call = _openai_call if client == "openai" else _anthropic_call
    text, finish, headers = call(gw.url, stream, use_async)
    assert len(text.split()) >= 3
    assert finish == ("stop" if client == "openai" else "end_turn")
    assert headers["x-drkit-target"] == f"{target}-1"
    assert headers["x-drkit-attempts"] == "1"
    assert "x-drkit-failover-reason" not in headers
    assert chat_attempts(sims.primary(target)) == 1
    # the simulator received the target's own dialect and model name
    assert sims.primary(target).last_request["model"] == "sim-large"  # type: ignore[index]


@pytest.mark.parametrize("target", DIALECTS)
def test_openai_tool_call_round_trip(
    sims: Sims, gateway_for: Any, target: str, request: pytest.FixtureRequest
) -> None:
    gw = gateway_for(route_for(sims.primary(target)))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    request.addfinalizer(client.close)
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_status",
                "description": "status of a region",
                "parameters": {
                    "type": "object",
                    "properties": {"region": {"type": "string", "enum": ["eu-west"]}},
                    "required": ["region"],
                },
            },
        }
    ]
    done = client.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "call get_status please"}],
        tools=tools,
        tool_choice="required",
    )
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_status"  # type: ignore[union-attr]
    assert call.function.arguments.replace(" ", "") == '{"region":"eu-west"}'  # type: ignore[union-attr]
    assert done.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("target", DIALECTS)
def test_anthropic_tool_use_streamed(
    sims: Sims, gateway_for: Any, target: str, request: pytest.FixtureRequest
) -> None:
    gw = gateway_for(route_for(sims.primary(target)))
    client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
    request.addfinalizer(client.close)
    with client.messages.stream(
        model="assistant",
        max_tokens=100,
        messages=[{"role": "user", "content": "use lookup"}],
        tools=[
            {
                "name": "lookup",
                "description": "look something up",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
        tool_choice={"type": "any"},
    ) as s:
        final = s.get_final_message()
    block = final.content[-1]
    assert block.type == "tool_use"
    assert block.name == "lookup"
    assert block.input == {"q": "sim"}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("target", DIALECTS)
@pytest.mark.parametrize("include_usage", [False, True])
def test_openai_stream_usage_only_when_asked(
    sims: Sims, gateway_for: Any, target: str, include_usage: bool
) -> None:
    """``chunk.choices[0]`` must work on every chunk unless the client asked for usage."""
    gw = gateway_for(route_for(sims.primary(target)))
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0) as client:
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
        chunks = list(
            client.chat.completions.create(
                model="assistant", messages=MESSAGES, stream=True, **extra
            )
        )
    choiceless = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(choiceless) == 1
        assert choiceless[0].usage is not None
        assert choiceless[0].usage.completion_tokens > 0
    else:
        assert choiceless == []
        assert all(c.usage is None for c in chunks)
