"""Request translation tables, both directions, and what is refused (with why)."""

from __future__ import annotations

from typing import Any

import pytest

from drkit.errors import TranslationError
from drkit.gateway.translate import DEFAULT_MAX_TOKENS, prepare_request, translate_request

TOOL_A = {
    "name": "get_weather",
    "description": "Weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOL_O = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

# (name, anthropic request, openai request): each side translates into the other
BOTH_WAYS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "system, sampling, stop, limit",
        {
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.9,
            "stop_sequences": ["END"],
        },
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            "max_completion_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.9,
            "stop": ["END"],
        },
    ),
    (
        "multi-turn",
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            "max_tokens": 10,
        },
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            "max_completion_tokens": 10,
        },
    ),
    (
        "tools, tool choice, tool call and result",
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "t1",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "cold"}],
                },
            ],
            "tools": [TOOL_A],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "max_tokens": 10,
        },
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "cold"},
            ],
            "tools": [TOOL_O],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "max_completion_tokens": 10,
        },
    ),
    (
        "tool choice any, no parallel calls, user id",
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [TOOL_A],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "metadata": {"user_id": "u-1"},
            "max_tokens": 5,
        },
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [TOOL_O],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "user": "u-1",
            "max_completion_tokens": 5,
        },
    ),
    (
        "images",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                }
            ],
            "max_tokens": 5,
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                }
            ],
            "max_completion_tokens": 5,
        },
    ),
]


@pytest.mark.parametrize(("name", "anth", "oai"), BOTH_WAYS, ids=[c[0] for c in BOTH_WAYS])
def test_anthropic_to_openai(name: str, anth: dict[str, Any], oai: dict[str, Any]) -> None:
    assert translate_request(anth, "anthropic", "openai") == oai


@pytest.mark.parametrize(("name", "anth", "oai"), BOTH_WAYS, ids=[c[0] for c in BOTH_WAYS])
def test_openai_to_anthropic(name: str, anth: dict[str, Any], oai: dict[str, Any]) -> None:
    assert translate_request(oai, "openai", "anthropic") == anth


ONE_WAY: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "openai max_tokens, string stop, no limit -> default",
        "openai",
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 7, "stop": "Z"},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 7, "stop_sequences": ["Z"]},
    ),
    (
        "openai without a limit gets the default",
        "openai",
        {
            "messages": [{"role": "user", "content": "x"}],
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        {
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "max_tokens": DEFAULT_MAX_TOKENS,
        },
    ),
    (
        "several system/developer messages join; consecutive tool results merge",
        "openai",
        {
            "messages": [
                {"role": "system", "content": "A"},
                {"role": "developer", "content": [{"type": "text", "text": "B"}]},
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {"id": "2", "type": "function", "function": {"name": "f", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "1", "content": "r1"},
                {"role": "tool", "tool_call_id": "2", "content": "r2"},
                {"role": "user", "content": "and?"},
            ],
            "max_completion_tokens": 9,
        },
        {
            "system": "A\n\nB",
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "1", "name": "f", "input": {}},
                        {"type": "tool_use", "id": "2", "name": "f", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "1", "content": "r1"},
                        {"type": "tool_result", "tool_use_id": "2", "content": "r2"},
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
            "max_tokens": 9,
        },
    ),
    (
        "anthropic system blocks with cache hints, error tool result, streaming usage",
        "anthropic",
        {
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "is_error": True,
                            "content": [{"type": "text", "text": "boom"}],
                        },
                        {"type": "text", "text": "now?"},
                    ],
                }
            ],
            "max_tokens": 3,
            "stream": True,
        },
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "tool", "tool_call_id": "t", "content": "[tool error] boom"},
                {"role": "user", "content": "now?"},
            ],
            "max_completion_tokens": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "source", "given", "expected"), ONE_WAY, ids=[c[0] for c in ONE_WAY]
)
def test_one_way(name: str, source: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    target = "openai" if source == "anthropic" else "anthropic"
    assert translate_request(given, source, target) == expected  # type: ignore[arg-type]


MSG = [{"role": "user", "content": "x"}]
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("openai", {"messages": MSG, "n": 2}, "n"),
    ("openai", {"messages": MSG, "stop": ["\n\n"]}, "whitespace"),
    ("openai", {"messages": MSG, "logprobs": True}, "logprobs"),
    ("openai", {"messages": MSG, "top_logprobs": 3}, "top_logprobs"),
    ("openai", {"messages": MSG, "temperature": 1.5}, "temperature"),
    ("openai", {"messages": MSG, "presence_penalty": 0.5}, "presence_penalty"),
    ("openai", {"messages": MSG, "seed": 4}, "seed"),
    ("openai", {"messages": MSG, "logit_bias": {"1": 2}}, "logit_bias"),
    ("openai", {"messages": MSG, "response_format": {"type": "json_object"}}, "response_format"),
    ("openai", {"messages": MSG, "reasoning_effort": "high"}, "reasoning_effort"),
    ("openai", {"messages": MSG, "audio": {"voice": "x"}}, "audio"),
    ("openai", {"messages": [{"role": "user", "content": "a", "name": "bob"}]}, "name"),
    ("openai", {"messages": [*MSG, {"role": "system", "content": "late"}]}, "system message"),
    (
        "openai",
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        "input_audio",
    ),
    ("openai", {"messages": MSG, "tools": [{"type": "custom", "custom": {}}]}, "tools[0]"),
    (
        "openai",
        {
            "messages": MSG,
            "tools": [{**TOOL_O, "function": {**TOOL_O["function"], "strict": True}}],
        },
        "strict",
    ),
    (
        "openai",
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                    ],
                }
            ]
        },
        "arguments",
    ),
    ("openai", {"messages": [{"role": "user", "content": "x", "extra": 1}]}, "extra"),
    (
        "openai",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "mood": 1}]}]},
        "mood",
    ),
    ("anthropic", {"messages": MSG, "max_tokens": 1, "top_k": 5}, "top_k"),
    (
        "anthropic",
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "x", "citations": [{"cited_text": "y"}]}],
                }
            ],
            "max_tokens": 1,
        },
        "citations",
    ),
    ("anthropic", {"messages": MSG, "max_tokens": 1, "thinking": {"type": "enabled"}}, "thinking"),
    ("anthropic", {"messages": MSG, "max_tokens": 1, "stop_sequences": list("abcde")}, "4 stop"),
    ("anthropic", {"messages": MSG, "max_tokens": 1, "service_tier": "auto"}, "service_tier"),
    (
        "anthropic",
        {"messages": MSG, "max_tokens": 1, "tools": [{"type": "web_search_20250305", "name": "w"}]},
        "server tool",
    ),
    (
        "anthropic",
        {
            "messages": [
                {"role": "user", "content": [{"type": "document", "source": {}}]},
            ],
            "max_tokens": 1,
        },
        "document",
    ),
    (
        "anthropic",
        {
            "messages": [
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}]},
            ],
            "max_tokens": 1,
        },
        "thinking",
    ),
]


@pytest.mark.parametrize(("source", "body", "why"), REFUSED, ids=[c[2] for c in REFUSED])
def test_refused_up_front_with_a_reason(source: str, body: dict[str, Any], why: str) -> None:
    target = "openai" if source == "anthropic" else "anthropic"
    with pytest.raises(TranslationError) as exc:
        translate_request(body, source, target)  # type: ignore[arg-type]
    assert exc.value.status == 400
    assert why in str(exc.value)
    assert exc.value.hint


def test_same_dialect_is_a_copy() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "n": 3}
    out = translate_request(body, "openai", "openai")
    assert out == body
    out["messages"].append({})
    assert len(body["messages"]) == 1


def test_prepare_sets_model_overrides_and_forced_stream() -> None:
    body = {"model": "assistant", "system": "client", "max_tokens": 10, "messages": MSG}
    out = prepare_request(
        body,
        client="anthropic",
        upstream="openai",
        model="gpt-4.1",
        system_prompt="You are on the backup provider.",
        params={"temperature": 0.2, "max_completion_tokens": 99},
        stream=True,
    )
    assert out["model"] == "gpt-4.1"
    assert out["messages"][:2] == [
        {"role": "system", "content": "You are on the backup provider."},
        {"role": "system", "content": "client"},
    ]
    assert (out["temperature"], out["max_completion_tokens"]) == (0.2, 99)
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    to_anthropic = prepare_request(
        {"model": "a", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}},
        client="openai",
        upstream="anthropic",
        model="claude",
        system_prompt="P",
        stream=False,
    )
    assert to_anthropic["system"] == "P"
    assert to_anthropic["stream"] is False
    assert "stream_options" not in to_anthropic
    blocks = prepare_request(
        {"model": "a", "max_tokens": 1, "messages": MSG, "system": [{"type": "text", "text": "S"}]},
        client="anthropic",
        upstream="anthropic",
        model="c",
        system_prompt="P",
        params={"top_k": None},
    )
    assert blocks["system"] == [{"type": "text", "text": "P"}, {"type": "text", "text": "S"}]


def test_params_may_not_replace_the_request() -> None:
    with pytest.raises(TranslationError, match="messages"):
        prepare_request(
            {"messages": MSG},
            client="openai",
            upstream="openai",
            model="m",
            params={"messages": []},
        )


def test_cache_hints_are_accepted_anywhere() -> None:
    hint = {"cache_control": {"type": "ephemeral"}}
    body = {
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a", **hint}, {"type": "text", "text": "b"}],
            },
        ],
    }
    out = translate_request(body, "anthropic", "openai")
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
