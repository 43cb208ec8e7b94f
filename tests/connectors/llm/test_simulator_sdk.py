"""The official openai and anthropic SDKs (sync, async, streaming or not) against the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from drkit.connectors.llm.simulator import ProviderSimulator

USER = [{"role": "user", "content": "What is an RTO?"}]
WEATHER_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]
WEATHER_ANTHROPIC = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    }
]


_OPEN: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def oai(sim: ProviderSimulator) -> openai.OpenAI:
    client = openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=10)
    _OPEN.append(client)
    return client


def ant(sim: ProviderSimulator) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="sk-ant", max_retries=0, timeout=10)
    _OPEN.append(client)
    return client


# --- OpenAI ------------------------------------------------------------------------------


def test_openai_sync_completion_has_text_usage_and_ids(openai_sim: ProviderSimulator) -> None:
    r = oai(openai_sim).chat.completions.create(model="gpt-sim", messages=USER)
    assert r.id.startswith("chatcmpl-")
    assert r.model == "gpt-sim"
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content
    assert r.usage is not None
    assert r.usage.completion_tokens == len(r.choices[0].message.content.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_stream_with_usage_matches_non_stream(openai_sim: ProviderSimulator) -> None:
    client = oai(openai_sim)
    whole = client.chat.completions.create(model="m", messages=USER)
    chunks = list(
        client.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_openai_tool_call_stream_and_not(openai_sim: ProviderSimulator) -> None:
    client = oai(openai_sim)
    ask = [{"role": "user", "content": "call get_weather for Paris"}]
    r = client.chat.completions.create(model="m", messages=ask, tools=WEATHER_OPENAI)  # type: ignore[arg-type]
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city":"sim","days":1}'  # type: ignore[union-attr]
    with client.chat.completions.stream(model="m", messages=ask, tools=WEATHER_OPENAI) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.arguments == call.function.arguments  # type: ignore[union-attr]
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_tool_result_gets_a_text_answer(openai_sim: ProviderSimulator) -> None:
    messages = [
        {"role": "user", "content": "call get_weather"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    r = oai(openai_sim).chat.completions.create(model="m", messages=messages, tools=WEATHER_OPENAI)  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content


def test_openai_stop_sequence_and_max_tokens(openai_sim: ProviderSimulator) -> None:
    openai_sim.state.mode = "echo"
    client = oai(openai_sim)
    msgs = [{"role": "user", "content": "one two three four five"}]
    r = client.chat.completions.create(model="m", messages=msgs, stop=[" three"])  # type: ignore[arg-type]
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("one two", "stop")
    r = client.chat.completions.create(model="m", messages=msgs, max_completion_tokens=2)  # type: ignore[arg-type]
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("one two", "length")


async def test_openai_async_stream_and_not(openai_sim: ProviderSimulator) -> None:
    client = openai.AsyncOpenAI(base_url=openai_sim.base_url, api_key="k", max_retries=0)
    async with client:
        r = await client.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == r.choices[0].message.content


def test_openai_models_and_errors(openai_sim: ProviderSimulator) -> None:
    client = oai(openai_sim)
    assert [m.id for m in client.models.list()] == ["sim-large", "sim-small"]
    no_key = httpx.post(
        openai_sim.base_url + "/chat/completions", json={"model": "m", "messages": USER}
    )
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        client.chat.completions.create(model="m", messages=USER, extra_body={"bogus": 1})  # type: ignore[arg-type]


# --- Anthropic ---------------------------------------------------------------------------


def test_anthropic_sync_message(anthropic_sim: ProviderSimulator) -> None:
    r = ant(anthropic_sim).messages.create(model="claude-sim", max_tokens=100, messages=USER)  # type: ignore[arg-type]
    assert r.id.startswith("msg_")
    assert r.model == "claude-sim"
    assert r.stop_reason == "end_turn"
    assert r.content[0].type == "text"
    assert r.usage.output_tokens == len(r.content[0].text.split())


def test_anthropic_stream_helper_matches_non_stream(anthropic_sim: ProviderSimulator) -> None:
    client = ant(anthropic_sim)
    whole = client.messages.create(model="m", max_tokens=100, messages=USER)  # type: ignore[arg-type]
    with client.messages.stream(model="m", max_tokens=100, messages=USER) as stream:  # type: ignore[arg-type]
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


def test_anthropic_raw_event_order(anthropic_sim: ProviderSimulator) -> None:
    events = list(
        ant(anthropic_sim).messages.create(model="m", max_tokens=100, messages=USER, stream=True)  # type: ignore[arg-type]
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


def test_anthropic_tool_use_and_stop_sequences(anthropic_sim: ProviderSimulator) -> None:
    client = ant(anthropic_sim)
    ask = [{"role": "user", "content": "use get_weather please"}]
    r = client.messages.create(model="m", max_tokens=100, messages=ask, tools=WEATHER_ANTHROPIC)  # type: ignore[arg-type]
    assert r.stop_reason == "tool_use"
    block = r.content[0]
    assert block.type == "tool_use"
    assert (block.name, block.input) == ("get_weather", {"city": "sim", "days": 1})
    with client.messages.stream(
        model="m",
        max_tokens=100,
        messages=ask,
        tools=WEATHER_ANTHROPIC,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == {"city": "sim", "days": 1}  # type: ignore[union-attr]
    anthropic_sim.state.mode = "echo"
    msgs = [{"role": "user", "content": "alpha beta STOP gamma"}]
    r = client.messages.create(model="m", max_tokens=100, messages=msgs, stop_sequences=["STOP"])  # type: ignore[arg-type]
    assert (r.stop_reason, r.stop_sequence) == ("stop_sequence", "STOP")
    assert r.content[0].text == "alpha beta "  # type: ignore[union-attr]
    r = client.messages.create(model="m", max_tokens=1, messages=msgs)  # type: ignore[arg-type]
    assert (r.stop_reason, r.content[0].text) == ("max_tokens", "alpha")  # type: ignore[union-attr]


async def test_anthropic_async_stream_and_not(anthropic_sim: ProviderSimulator) -> None:
    client = anthropic.AsyncAnthropic(base_url=anthropic_sim.base_url, api_key="k", max_retries=0)
    async with client:
        r = await client.messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
        async with client.messages.stream(model="m", max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_message()
    assert final.content[0].text == r.content[0].text  # type: ignore[union-attr]


def test_anthropic_headers_are_required(anthropic_sim: ProviderSimulator) -> None:
    url = anthropic_sim.base_url + "/v1/messages"
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    no_key = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    no_version = httpx.post(url, json=body, headers={"x-api-key": "k"})
    assert no_version.status_code == 400
    ok = httpx.post(url, json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert ok.status_code == 200
    assert ok.headers["request-id"].startswith("req_")
    system_role = {**body, "messages": [{"role": "system", "content": "x"}]}
    with pytest.raises(anthropic.BadRequestError, match="role"):
        ant(anthropic_sim).messages.create(**system_role)  # type: ignore[arg-type]
    assert [m.id for m in ant(anthropic_sim).models.list()] == ["sim-large", "sim-small"]


# --- determinism and faults seen by the SDKs -----------------------------------------------


def test_same_seed_same_answer_other_seed_other_answer() -> None:
    answers = []
    for seed in (1, 1, 2):
        with ProviderSimulator("openai", seed=seed) as sim:
            r = oai(sim).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
            answers.append(r.choices[0].message.content)
    assert answers[0] == answers[1] != answers[2]


def test_sdk_sees_overloaded_and_rate_limit(sim: ProviderSimulator) -> None:
    sim.set_faults(
        {"kind": "error", "status": 529, "first": 1}, {"kind": "rate_limit", "retry_after": 2}
    )
    if sim.dialect == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as exc_a:
            ant(sim).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
        assert exc_a.value.status_code == 529
        assert exc_a.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        with pytest.raises(anthropic.RateLimitError) as exc_r:
            ant(sim).messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
        assert exc_r.value.response.headers["retry-after"] == "2"
    else:
        with pytest.raises(openai.APIStatusError) as exc_o:
            oai(sim).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert exc_o.value.status_code == 529
        with pytest.raises(openai.RateLimitError) as exc_l:
            oai(sim).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
        assert exc_l.value.response.headers["retry-after-ms"] == "2000"
    assert sim.stats()["requests"] == 2
    assert sim.stats()["faults_fired"] == {"error": 1, "rate_limit": 1}


def test_sdks_raise_on_an_error_event_mid_stream(sim: ProviderSimulator) -> None:
    sim.set_faults({"kind": "stream_error", "after": 2, "status": 529})
    if sim.dialect == "anthropic":
        stream = ant(sim).messages.create(model="m", max_tokens=50, messages=USER, stream=True)  # type: ignore[arg-type]
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            list(stream)
    else:
        chunks = oai(sim).chat.completions.create(model="m", messages=USER, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError, match="Overloaded"):
            list(chunks)
