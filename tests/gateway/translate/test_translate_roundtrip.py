"""Property tests: translating there and back gives the request back; bad bodies give 400s."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from drkit.connectors.llm.sse import SSEEvent
from drkit.errors import TranslationError, UpstreamError
from drkit.gateway.translate import StreamTranslator, translate_request

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
name = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)
args = st.dictionaries(name, st.one_of(st.integers(), text, st.booleans()), max_size=3)


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    tool_names = draw(st.lists(name, min_size=0, max_size=3, unique=True))
    for turn in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(text)})
        if tool_names and draw(st.booleans()):
            calls = [
                {
                    "id": f"call_{turn}_{i}",
                    "type": "function",
                    "function": {
                        "name": draw(st.sampled_from(tool_names)),
                        "arguments": json.dumps(draw(args), separators=(",", ":")),
                    },
                }
                for i in range(draw(st.integers(1, 2)))
            ]
            content = draw(st.one_of(st.none(), text))
            messages.append({"role": "assistant", "content": content, "tool_calls": calls})
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": draw(text)})
            if draw(st.booleans()):
                # the next turn is the tool results alone
                messages.append({"role": "assistant", "content": draw(text)})
        else:
            messages.append({"role": "assistant", "content": draw(text)})
    if messages[-1]["role"] == "assistant" and draw(st.booleans()):
        messages.append({"role": "user", "content": draw(text)})
    body: dict[str, Any] = {"messages": messages, "max_completion_tokens": draw(st.integers(1, 9))}
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["top_p"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(text.filter(str.strip), min_size=1, max_size=4))
    if tool_names:
        body["tools"] = [
            {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
            for n in tool_names
        ]
        body["tool_choice"] = draw(
            st.sampled_from(
                [
                    "auto",
                    "required",
                    "none",
                    {"type": "function", "function": {"name": tool_names[0]}},
                ]
            )
        )
    return body


@settings(max_examples=80, deadline=None)
@given(openai_requests())
def test_openai_there_and_back(body: dict[str, Any]) -> None:
    there = translate_request(body, "openai", "anthropic")
    assert translate_request(there, "anthropic", "openai") == body
    # and Anthropic's own shape survives the opposite trip
    assert (
        translate_request(translate_request(there, "anthropic", "openai"), "openai", "anthropic")
        == there
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "tool_calls",
                    "function",
                    "name",
                    "messages",
                    "input",
                    "id",
                ]
            )
            | text,
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "messages",
                "system",
                "tools",
                "tool_choice",
                "stop",
                "max_tokens",
                "stop_sequences",
                "temperature",
                "metadata",
                "content",
            ]
        ),
        json_values,
        max_size=5,
    ),
    st.sampled_from(["openai", "anthropic"]),
)
def test_any_malformed_body_is_a_translation_error(body: dict[str, Any], source: str) -> None:
    """A body the translator cannot read is the client's 400, never a 500 crash."""
    target = "anthropic" if source == "openai" else "openai"
    try:
        out = translate_request(body, source, target)  # type: ignore[arg-type]
        status = 200 if isinstance(out, dict) else 500
    except TranslationError as exc:
        status = exc.status
    assert status in (200, 400)


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=4), st.sampled_from(["openai", "anthropic"]))
def test_any_malformed_stream_event_is_an_upstream_error(events: list[Any], upstream: str) -> None:
    """Events of the wrong shape are the provider's fault (retryable), never a crash."""
    client = "anthropic" if upstream == "openai" else "openai"
    translator = StreamTranslator(upstream, client)  # type: ignore[arg-type]
    for data in events:
        event = SSEEvent(json.dumps(data), data.get("type") if isinstance(data, dict) else None)
        try:
            out = translator.feed(event)
        except UpstreamError as exc:
            outcome = exc.reason
        except TranslationError:
            outcome = "untranslatable"
        else:
            outcome = "ok" if isinstance(out, list) else "crash"
        assert outcome in ("ok", "malformed", "untranslatable")
        if outcome != "ok":
            return
