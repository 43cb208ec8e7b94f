"""SSE parsing edge cases, event meaning per dialect, and encode/parse round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drkit.connectors.llm.sse import (
    SSEEvent,
    SSEParser,
    encode_json_sse,
    encode_sse,
    error_payload,
    is_content,
    is_terminal,
    parse_sse,
)

CASES: list[tuple[str, bytes, list[tuple[str | None, str]]]] = [
    ("lf", b"data: a\n\ndata: b\n\n", [(None, "a"), (None, "b")]),
    ("crlf", b"event: x\r\ndata: a\r\n\r\n", [("x", "a")]),
    ("cr only", b"data: a\r\rdata: b\r\r", [(None, "a"), (None, "b")]),
    ("multi-line data", b"data: a\ndata: b\n\n", [(None, "a\nb")]),
    ("comment keep-alive", b": ping\n\ndata: a\n\n", [(None, "a")]),
    ("no space after colon", b"data:a\n\n", [(None, "a")]),
    ("only one space stripped", b"data:  a\n\n", [(None, " a")]),
    ("field without colon", b"data\n\n", [(None, "")]),
    ("event without data is dropped", b"event: x\n\ndata: a\n\n", [(None, "a")]),
    ("unknown fields ignored", b"retry: 10\nfoo: bar\ndata: a\n\n", [(None, "a")]),
    ("bom", b"\xef\xbb\xbfdata: a\n\n", [(None, "a")]),
    ("unfinished event discarded", b"data: a\n\ndata: b\n", [(None, "a")]),
    ("utf-8", "data: héllo ✓\n\n".encode(), [(None, "héllo ✓")]),
    ("done", b"data: [DONE]\n\n", [(None, "[DONE]")]),
]


@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_whole(name: str, raw: bytes, expected: list[tuple[str | None, str]]) -> None:
    assert [(e.event, e.data) for e in parse_sse(raw)] == expected


@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_byte_by_byte(name: str, raw: bytes, expected: list[tuple[str | None, str]]) -> None:
    parser = SSEParser()
    events = [e for i in range(len(raw)) for e in parser.feed(raw[i : i + 1])]
    assert [(e.event, e.data) for e in events + parser.close()] == expected


def test_pending_tells_a_cut_mid_event() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\n")
    assert not parser.pending
    parser.feed(b'data: {"x"')
    assert parser.pending


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.none(),
                st.text(
                    st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
                    min_size=1,
                ),
            ),
            st.text(
                st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), min_size=1
            ),
        ),
        max_size=8,
    ),
    st.integers(min_value=1, max_value=17),
)
def test_encode_then_parse_in_any_chunking(events: list[tuple[str | None, str]], step: int) -> None:
    raw = b"".join(encode_sse(data, name) for name, data in events)
    parser = SSEParser()
    got = [e for i in range(0, len(raw), step) for e in parser.feed(raw[i : i + step])]
    assert [(e.event, e.data) for e in got] == events


def ev(data: object, event: str | None = None) -> SSEEvent:
    return parse_sse(encode_json_sse(data, event))[0]


@pytest.mark.parametrize(
    ("dialect", "event", "content", "terminal"),
    [
        (
            "openai",
            ev({"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
            False,
            False,
        ),
        ("openai", ev({"choices": [{"delta": {"content": "Hi"}}]}), True, False),
        ("openai", ev({"choices": [{"delta": {"tool_calls": [{"index": 0}]}}]}), True, False),
        ("openai", ev({"choices": [], "usage": {"total_tokens": 3}}), False, False),
        ("openai", SSEEvent("[DONE]"), False, True),
        ("anthropic", ev({"type": "message_start", "message": {}}, "message_start"), False, False),
        ("anthropic", ev({"type": "ping"}, "ping"), False, False),
        (
            "anthropic",
            ev({"type": "content_block_start", "content_block": {"type": "text", "text": ""}}),
            False,
            False,
        ),
        (
            "anthropic",
            ev({"type": "content_block_start", "content_block": {"type": "tool_use"}}),
            True,
            False,
        ),
        (
            "anthropic",
            ev({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}),
            True,
            False,
        ),
        ("anthropic", ev({"type": "message_stop"}, "message_stop"), False, True),
        # an empty thinking block is not content yet (sse.py said it was, the translator
        # said not: one rule now), its thinking text is
        (
            "anthropic",
            ev({"type": "content_block_start", "content_block": {"type": "thinking"}}),
            False,
            False,
        ),
        (
            "anthropic",
            ev(
                {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": ""}}
            ),
            False,
            False,
        ),
        (
            "anthropic",
            ev(
                {
                    "type": "content_block_delta",
                    "delta": {"type": "thinking_delta", "thinking": "h"},
                }
            ),
            True,
            False,
        ),
    ],
)
def test_event_meaning(dialect: str, event: SSEEvent, content: bool, terminal: bool) -> None:
    assert is_content(dialect, event) is content  # type: ignore[arg-type]
    assert is_terminal(dialect, event) is terminal  # type: ignore[arg-type]
    assert error_payload(dialect, event) is None  # type: ignore[arg-type]


def test_error_events() -> None:
    anthropic_err = ev({"type": "error", "error": {"type": "overloaded_error"}}, "error")
    assert error_payload("anthropic", anthropic_err) == {"type": "overloaded_error"}
    openai_err = ev({"error": {"message": "boom", "type": "server_error"}})
    assert error_payload("openai", openai_err) == {"message": "boom", "type": "server_error"}


def test_bad_json_raises_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is a ValueError
        is_content("openai", SSEEvent('{"choices": ['))


def test_one_anthropic_error_table_for_simulator_gateway_and_client() -> None:
    """The simulator's bodies, the gateway's answers and the client's reading of an
    in-stream error agree (they used three tables that disagreed on 500 and 503)."""
    from drkit.connectors.llm.error_types import ANTHROPIC_STATUS, anthropic_error_type
    from drkit.connectors.llm.wire import error_response
    from drkit.gateway.dialects import error_type

    for status in (400, 401, 403, 404, 413, 429, 500, 503, 529):
        sim = json.loads(bytes(error_response("anthropic", status, "x").body))
        assert sim["error"]["type"] == error_type("anthropic", status)
        assert sim["error"]["type"] == anthropic_error_type(status)
    assert anthropic_error_type(500) == "api_error"
    assert ANTHROPIC_STATUS["overloaded_error"] == 529
    assert ANTHROPIC_STATUS["api_error"] == 500


def test_one_openai_error_table_for_simulator_gateway_and_client() -> None:
    """The simulator's OpenAI bodies (HTTP and in-stream) and the gateway's answers to
    OpenAI clients give the same type and code (they used two tables that disagreed)."""
    from drkit.connectors.llm.client import stream_error
    from drkit.connectors.llm.faults import Fault
    from drkit.connectors.llm.sse import parse_sse
    from drkit.connectors.llm.wire import error_response, stream_error_frame
    from drkit.gateway.dialects import error_body

    # what the client reads back from the in-stream error (it has no status of its own)
    read_as = {400: 400, 401: 401, 403: 403, 404: 404, 409: 400, 429: 429, 500: 500, 503: 500}
    for status, read in read_as.items():
        sim = json.loads(bytes(error_response("openai", status, "x").body))["error"]
        gateway = error_body("openai", status, "x")["error"]
        assert (sim["type"], sim["code"]) == (gateway["type"], gateway["code"])
        frame = parse_sse(stream_error_frame("openai", Fault(kind="stream_error", status=status)))
        in_stream = json.loads(frame[0].data)["error"]
        assert (in_stream["type"], in_stream["code"]) == (sim["type"], sim["code"])
        assert stream_error(in_stream, "t").status == read
