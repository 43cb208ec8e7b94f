"""Every simulator fault, both dialects, both stream-failure modes: what the client sees.

Each route has a primary of one dialect and a secondary of the other, so every failover
also crosses a translation. Assertions are on the SDK's view (a complete answer, or an
error it raises) and on the upstream attempts each simulator counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import anthropic
import openai
import pytest
from gwkit import CLIENT_KEY, Sims, chat_attempts, route_for

from drkit.types import Secret

DIALECTS = ["openai", "anthropic"]
PROMPT: list[Any] = [{"role": "user", "content": "Tell me about the recovery drill."}]


def other(dialect: str) -> str:
    return "anthropic" if dialect == "openai" else "openai"


@dataclass
class Seen:
    """What the client got: the text, the stop reason, headers, or the error raised."""

    text: str = ""
    finish: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None
    status: int | None = None


def ask(url: str, client: str, stream: bool) -> Seen:
    seen = Seen()
    oc = openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    ac = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)
    try:
        if client == "openai":
            if stream:
                with oc.chat.completions.with_streaming_response.create(
                    model="assistant", messages=PROMPT, stream=True
                ) as raw:
                    seen.headers = dict(raw.headers)
                    for chunk in raw.parse():
                        for choice in chunk.choices:
                            seen.text += choice.delta.content or ""
                            seen.finish = choice.finish_reason or seen.finish
            else:
                resp = oc.chat.completions.with_raw_response.create(
                    model="assistant", messages=PROMPT
                )
                seen.headers = dict(resp.headers)
                done = resp.parse()
                seen.text = done.choices[0].message.content or ""
                seen.finish = done.choices[0].finish_reason
        else:
            args: dict[str, Any] = {"model": "assistant", "max_tokens": 300, "messages": PROMPT}
            if stream:
                with ac.messages.stream(**args) as s:
                    seen.headers = dict(s.response.headers)
                    for text in s.text_stream:
                        seen.text += text
                    seen.finish = s.get_final_message().stop_reason
            else:
                raw = ac.messages.with_raw_response.create(**args)
                seen.headers = dict(raw.headers)
                msg = raw.parse()
                seen.text = "".join(b.text for b in msg.content if b.type == "text")
                seen.finish = msg.stop_reason
    except (openai.APIError, anthropic.APIError) as exc:
        seen.error = exc
        seen.status = getattr(exc, "status_code", None)
    finally:
        oc.close()
        ac.close()
    return seen


def complete(seen: Seen, client: str) -> bool:
    return seen.error is None and seen.finish == ("stop" if client == "openai" else "end_turn")


# --- faults before the first token: failover is invisible --------------------------------

PRE_TOKEN_FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("error-503", {"kind": "error", "status": 503}, "status_5xx"),
    ("error-500", {"kind": "error", "status": 500}, "status_5xx"),
    ("error-529", {"kind": "error", "status": 529}, "status_5xx"),
    ("rate-limit", {"kind": "rate_limit", "retry_after": 30}, "status_429"),
    ("latency", {"kind": "latency", "delay": 2.0}, "timeout_first_token"),
    ("black-hole", {"kind": "black_hole"}, "timeout_first_token"),
    ("refused", {"kind": "refuse"}, "connect"),
    ("cut-before-token", {"kind": "stream_cut", "after": 0}, "stream_cut"),
    ("stall-before-token", {"kind": "stream_stall", "after": 0}, "timeout_first_token"),
    ("malformed", {"kind": "malformed", "after": 0}, "malformed"),
]


@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize("primary", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "reason"),
    [pytest.param(f, r, id=i) for i, f, r in PRE_TOKEN_FAULTS],
)
def test_fault_before_first_token_fails_over_invisibly(
    sims: Sims, gateway_for: Any, fault: dict[str, Any], reason: str, primary: str, client: str
) -> None:
    first, second = sims.primary(primary), sims.secondary(other(primary))
    gw = gateway_for(route_for(first, second))
    first.set_faults(fault)
    stream = client == primary  # both shapes, alternating
    seen = ask(gw.url, client, stream)
    assert complete(seen, client), seen.error
    assert len(seen.text.split()) >= 3
    assert seen.headers["x-drkit-target"] == second_name(second)
    assert seen.headers["x-drkit-attempts"] == "2"
    assert seen.headers["x-drkit-failover-reason"] == f"{primary}-1:{reason}"
    assert chat_attempts(second) == 1
    if fault["kind"] != "refuse":  # a refused connection never reaches the simulator
        assert chat_attempts(first) == 1
    # timeouts and refusals eject at once and a 429 cools the target for Retry-After:
    # the next request does not pay for the primary again; other errors need
    # eject_after (3) in a row
    soft = reason in ("status_5xx", "stream_cut", "malformed")
    again = ask(gw.url, client, stream)
    assert complete(again, client)
    assert again.headers["x-drkit-attempts"] == ("2" if soft else "1")
    if fault["kind"] != "refuse":
        assert chat_attempts(first) == (2 if soft else 1)
    assert "failover" in gw.events.kinds()


def second_name(sim: Any) -> str:
    return f"{sim.dialect}-2"


def test_latency_under_the_deadline_is_served_by_the_primary(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2))
    sims.oa1.set_faults({"kind": "latency", "delay": 0.2})
    seen = ask(gw.url, "anthropic", True)
    assert complete(seen, "anthropic")
    assert seen.headers["x-drkit-target"] == "openai-1"
    assert (chat_attempts(sims.oa1), chat_attempts(sims.an2)) == (1, 0)


@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize("status", [400, 413, 422])
def test_client_errors_are_returned_unchanged_without_failover(
    sims: Sims, gateway_for: Any, client: str, status: int
) -> None:
    gw = gateway_for(route_for(sims.primary(client), sims.secondary(other(client))))
    sims.primary(client).set_faults(
        {"kind": "error", "status": status, "message": "your request is wrong in a specific way"}
    )
    seen = ask(gw.url, client, False)
    assert seen.status == status
    assert "your request is wrong in a specific way" in str(seen.error)
    assert chat_attempts(sims.primary(client)) == 1
    assert chat_attempts(sims.secondary(other(client))) == 0


@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param({"kind": "error", "status": 403}, "upstream_auth", id="403"),
        pytest.param(
            {"kind": "error", "status": 404, "message": "model retired"},
            "model_not_found",
            id="404",
        ),
    ],
)
def test_the_gateways_own_config_errors_fail_over_and_eject(
    sims: Sims, gateway_for: Any, client: str, fault: dict[str, Any], reason: str
) -> None:
    """403 and 404 answer the gateway's key and model name, not the client's request."""
    primary, secondary = sims.primary(client), sims.secondary(other(client))
    gw = gateway_for(route_for(primary, secondary))
    primary.set_faults(fault)
    for attempts in ("2", "1"):  # ejected at once: the next request skips it
        seen = ask(gw.url, client, False)
        assert complete(seen, client), seen.error
        assert seen.headers["x-drkit-target"] == f"{other(client)}-2"
        assert seen.headers["x-drkit-attempts"] == attempts
    assert chat_attempts(primary) == 1
    assert gw.state(f"{client}-1") == "ejected"
    ejection = next(e for e in gw.events.events if e.kind == "ejection")
    assert ejection.data["reason"] == reason
    assert "check the target's" in ejection.message


def test_a_revoked_provider_key_fails_over_to_the_secondary(sims: Sims, gateway_for: Any) -> None:
    route = route_for(sims.oa1, sims.an2)
    revoked = replace(route.targets[0], api_key_env=None, api_key=Secret("sk-revoked"))
    gw = gateway_for(replace(route, targets=(revoked, route.targets[1])))
    seen = ask(gw.url, "openai", True)
    assert complete(seen, "openai"), seen.error
    assert seen.headers["x-drkit-target"] == "anthropic-2"
    assert seen.headers["x-drkit-failover-reason"] == "openai-1:upstream_auth"
    assert gw.state("openai-1") == "ejected"
    assert gw.events.events[0].data["reason"] == "upstream_auth"
    # every target with a bad key: the gateway's fault (503), never the client's 401
    sims.an2.set_faults({"kind": "error", "status": 401})
    seen = ask(gw.url, "anthropic", False)
    assert seen.status == 503


@pytest.mark.parametrize("client", DIALECTS)
def test_every_target_down_is_a_clear_503(sims: Sims, gateway_for: Any, client: str) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an1))
    sims.oa1.set_faults({"kind": "error", "status": 503})
    sims.an1.set_faults({"kind": "error", "status": 529})
    seen = ask(gw.url, client, client == "anthropic")
    assert seen.status == 503
    assert "every target failed" in str(seen.error)
    assert (chat_attempts(sims.oa1), chat_attempts(sims.an1)) == (1, 1)


# --- faults after the first token: typed error, or continuation --------------------------

MID_STREAM_FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("cut", {"kind": "stream_cut", "after": 3}, "stream_cut"),
    ("cut-clean", {"kind": "stream_cut", "after": 3, "mode": "clean"}, "stream_cut"),
    ("stall", {"kind": "stream_stall", "after": 3}, "timeout_idle"),
    ("malformed", {"kind": "malformed", "after": 3}, "malformed"),
]


@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize("primary", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "reason"), [pytest.param(f, r, id=i) for i, f, r in MID_STREAM_FAULTS]
)
def test_mid_stream_failure_is_a_typed_error(
    sims: Sims, gateway_for: Any, fault: dict[str, Any], reason: str, primary: str, client: str
) -> None:
    first, second = sims.primary(primary), sims.secondary(other(primary))
    gw = gateway_for(route_for(first, second, on_stream_failure="error"))
    first.set_faults(fault)
    seen = ask(gw.url, client, True)
    assert seen.error is not None, "a cut stream must not look complete"
    assert "cut off" in str(seen.error)
    assert len(seen.text.split()) == 3  # the client got the first tokens, then the error
    assert seen.finish is None
    assert (chat_attempts(first), chat_attempts(second)) == (1, 0)
    kinds = gw.events.kinds()
    assert "stream_failure" in kinds


@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "reason"), [pytest.param(f, r, id=i) for i, f, r in MID_STREAM_FAULTS]
)
def test_mid_stream_failure_without_streaming_starts_over_on_the_next_target(
    sims: Sims, gateway_for: Any, client: str, fault: dict[str, Any], reason: str
) -> None:
    """A non-streaming client has received nothing: the next target answers afresh."""
    gw = gateway_for(route_for(sims.oa1, sims.an2, on_stream_failure="error"))
    sims.oa1.set_faults(fault)
    seen = ask(gw.url, client, False)
    assert complete(seen, client), seen.error
    assert seen.headers["x-drkit-target"] == "anthropic-2"
    assert seen.headers["x-drkit-attempts"] == "2"
    assert seen.headers["x-drkit-failover-reason"] == f"openai-1:{reason}"
    assert (chat_attempts(sims.oa1), chat_attempts(sims.an2)) == (1, 1)
    # asked from scratch (no prefill of the primary's partial answer)
    assert sims.an2.last_request["messages"][-1]["role"] == "user"  # type: ignore[index]
    assert gw.events.events[-1].data["continuation"] is False


@pytest.mark.parametrize("client", DIALECTS)
def test_mid_stream_failure_without_streaming_is_an_error_not_a_partial_answer(
    sims: Sims, gateway_for: Any, client: str
) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2, on_stream_failure="error"))
    sims.oa1.set_faults({"kind": "stream_cut", "after": 3})
    sims.an2.set_faults({"kind": "stream_cut", "after": 3})
    seen = ask(gw.url, client, False)
    assert seen.status == 502
    assert "incomplete" in str(seen.error)
    assert seen.text == ""


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
@pytest.mark.parametrize("client", DIALECTS)
@pytest.mark.parametrize("primary", DIALECTS)
@pytest.mark.parametrize(
    ("fault", "reason"), [pytest.param(f, r, id=i) for i, f, r in MID_STREAM_FAULTS[:3]]
)
def test_mid_stream_failure_continues_on_the_next_target(
    sims: Sims,
    gateway_for: Any,
    fault: dict[str, Any],
    reason: str,
    primary: str,
    client: str,
    stream: bool,
) -> None:
    first, second = sims.primary(primary), sims.secondary(other(primary))
    gw = gateway_for(route_for(first, second, on_stream_failure="continue"))
    # what the primary would have said, for comparison with the spliced answer
    baseline = ask(gw.url, client, True).text
    first.reset_stats()
    first.set_faults(fault)
    seen = ask(gw.url, client, stream)
    assert complete(seen, client), seen.error
    head = "".join(baseline.split(" ")[:3])
    assert seen.text.replace(" ", "").startswith(head)  # the partial answer was kept
    assert len(seen.text) > len(" ".join(baseline.split(" ")[:3]))  # and continued
    assert (chat_attempts(first), chat_attempts(second)) == (1, 1)
    # the continuation was asked to continue the partial answer (assistant prefill)
    last = second.last_request["messages"][-1]  # type: ignore[index]
    assert last["role"] == "assistant"
    if stream:
        assert seen.headers["x-drkit-target"] == f"{primary}-1"  # headers went out first
    else:
        assert seen.headers["x-drkit-target"] == f"{other(primary)}-2"
        assert seen.headers["x-drkit-attempts"] == "2"
    assert "failover" in gw.events.kinds()


def test_a_tool_call_cut_mid_stream_is_not_continued(sims: Sims, gateway_for: Any) -> None:
    """Only plain text can be continued by prefill; a half-streamed tool call ends in an error."""
    gw = gateway_for(route_for(sims.oa1, sims.oa2, on_stream_failure="continue"))
    sims.oa1.set_faults({"kind": "stream_cut", "after": 2})
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    with (
        openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0) as oc,
        pytest.raises(openai.APIError, match="cut off"),
    ):
        for _ in oc.chat.completions.create(
            model="assistant", messages=PROMPT, tools=tools, tool_choice="required", stream=True
        ):
            pass
    assert (chat_attempts(sims.oa1), chat_attempts(sims.oa2)) == (1, 0)
    assert gw.events.events[-1].data["mode"] == "continue"


@pytest.mark.parametrize("client", DIALECTS)
def test_every_target_rate_limited_is_a_429_with_retry_after(
    sims: Sims, gateway_for: Any, client: str
) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2))
    sims.oa1.set_faults({"kind": "rate_limit", "retry_after": 20})
    sims.an2.set_faults({"kind": "rate_limit", "retry_after": 10})
    for _ in range(2):  # the second request does not even reach the providers
        seen = ask(gw.url, client, False)
        assert seen.status == 429
        assert "rate limited" in str(seen.error)
        retry_after = int(seen.error.response.headers["retry-after"])  # type: ignore[union-attr]
        assert 8 <= retry_after <= 10
    assert (chat_attempts(sims.oa1), chat_attempts(sims.an2)) == (1, 1)
