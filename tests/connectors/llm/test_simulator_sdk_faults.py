"""The simulator's non-streaming fault answers, as the official openai and anthropic SDKs see them.

Upstream calls of the gateway always stream, so the non-streaming answers are the ones an
application that talks to the simulator directly gets (drills, demos, SDK users): every
fault must reach each SDK as the exception a real provider's failure would raise.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from drkit.connectors.llm.error_types import anthropic_error_type, openai_error
from drkit.connectors.llm.simulator import ProviderSimulator

USER = [{"role": "user", "content": "What is an RTO?"}]
#: the SDKs' own timeout for the faults that answer late or never (the test's wait)
SHORT = 0.4


def create(sim: ProviderSimulator, *, timeout: float = 10.0) -> str:
    """One non-streaming call with the dialect's official SDK (no retries): the answer's text."""
    if sim.dialect == "openai":
        with openai.OpenAI(
            base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=timeout
        ) as oai:
            r = oai.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
            return r.choices[0].message.content or ""
    with anthropic.Anthropic(
        base_url=sim.base_url, api_key="sk-ant", max_retries=0, timeout=timeout
    ) as ant:
        m = ant.messages.create(model="m", max_tokens=50, messages=USER)  # type: ignore[arg-type]
        return m.content[0].text  # type: ignore[union-attr]


#: status -> the exception class each SDK raises for it (by HTTP status)
RAISED = {
    400: (openai.BadRequestError, anthropic.BadRequestError),
    401: (openai.AuthenticationError, anthropic.AuthenticationError),
    403: (openai.PermissionDeniedError, anthropic.PermissionDeniedError),
    404: (openai.NotFoundError, anthropic.NotFoundError),
    500: (openai.InternalServerError, anthropic.InternalServerError),
    503: (openai.InternalServerError, anthropic.InternalServerError),
    529: (openai.InternalServerError, anthropic.InternalServerError),
}


@pytest.mark.parametrize("status", sorted(RAISED))
def test_an_error_status_is_the_sdks_exception_with_the_dialects_error_body(
    sim: ProviderSimulator, status: int
) -> None:
    sim.set_faults({"kind": "error", "status": status, "first": 1})
    raised = RAISED[status][0 if sim.dialect == "openai" else 1]
    with pytest.raises(raised) as info:
        create(sim)
    err = info.value
    assert isinstance(err, openai.APIStatusError | anthropic.APIStatusError)
    assert err.status_code == status
    body = err.body
    assert isinstance(body, dict)
    if sim.dialect == "openai":  # the SDK hands over the body's "error" object
        assert (body["type"], body["code"]) == openai_error(status)
    else:
        assert body["type"] == "error"
        assert body["error"]["type"] == anthropic_error_type(status)
    assert create(sim)  # first: 1 -- the next request is answered
    assert sim.stats()["faults_fired"] == {"error": 1}


def test_a_rate_limit_is_a_rate_limit_error_with_retry_after(sim: ProviderSimulator) -> None:
    sim.set_faults({"kind": "rate_limit", "retry_after": 3})
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)) as info:
        create(sim)
    headers = info.value.response.headers
    assert headers["retry-after"] == "3"
    if sim.dialect == "openai":
        assert headers["retry-after-ms"] == "3000"


def test_a_stream_error_fault_on_a_non_streaming_request_is_an_error_status(
    sim: ProviderSimulator,
) -> None:
    """A request that does not stream cannot get an error event: it gets the status."""
    sim.set_faults({"kind": "stream_error", "status": 529})
    with pytest.raises((openai.InternalServerError, anthropic.InternalServerError)) as info:
        create(sim)
    assert info.value.status_code == 529
    if sim.dialect == "anthropic":
        assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize(
    "fault",
    [{"kind": "black_hole"}, {"kind": "latency", "delay": 2.0}, {"kind": "stream_stall"}],
    ids=["black_hole", "latency", "stall-half-body"],
)
def test_no_answer_in_time_is_the_sdks_timeout(
    sim: ProviderSimulator, fault: dict[str, object]
) -> None:
    sim.set_faults(fault)
    timeout = openai.APITimeoutError if sim.dialect == "openai" else anthropic.APITimeoutError
    with pytest.raises(timeout):
        create(sim, timeout=SHORT)


def test_a_short_latency_or_stall_is_only_slower(sim: ProviderSimulator) -> None:
    normal = create(sim)
    sim.set_faults({"kind": "latency", "delay": 0.05})
    assert create(sim) == normal
    sim.set_faults({"kind": "stream_stall", "delay": 0.05})  # half the body, a pause, the rest
    assert create(sim) == normal


@pytest.mark.parametrize("fault", [{"kind": "stream_cut"}, {"kind": "refuse"}], ids=str)
def test_a_dropped_or_refused_connection_is_a_connection_error(
    sim: ProviderSimulator, fault: dict[str, object]
) -> None:
    sim.set_faults(fault)
    connection = (
        openai.APIConnectionError if sim.dialect == "openai" else anthropic.APIConnectionError
    )
    with pytest.raises(connection) as info:
        create(sim)
    assert not isinstance(info.value, openai.APITimeoutError | anthropic.APITimeoutError)
    sim.clear_faults()
    assert create(sim)  # the simulator listens again once the fault is gone


@pytest.mark.parametrize(
    "fault", [{"kind": "malformed"}, {"kind": "stream_cut", "mode": "clean"}], ids=str
)
def test_half_a_json_body_reaches_the_sdk_as_an_undecodable_answer(
    sim: ProviderSimulator, fault: dict[str, object]
) -> None:
    """Half the JSON, cleanly ended: the SDKs fail decoding it (a ValueError, not an
    APIError): the failure a client of a broken provider sees, and a gateway must not pass on."""
    sim.set_faults(fault)
    with pytest.raises(json.JSONDecodeError):
        create(sim)


def test_a_wrong_answer_is_a_well_formed_other_answer(sim: ProviderSimulator) -> None:
    right = create(sim)
    sim.set_faults({"kind": "wrong_answer"})
    wrong = create(sim)
    assert wrong
    assert wrong != right
    sim.set_faults({"kind": "wrong_answer", "topic": "nothing said here"})
    assert create(sim) == right  # the topic is not in the conversation: a normal answer
