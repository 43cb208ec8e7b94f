"""The HTTP surface: auth, models, admin, bad requests, and secrets that never leak."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest
from gwkit import CLIENT_KEY, SIM_KEYS, Sims, chat_attempts, route_for

from drkit.gateway.auth import KeyCheck
from drkit.gateway.config import GatewayConfig, client_key_hashes

BODY = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
ABODY = {**BODY, "max_tokens": 50}


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/v1/chat/completions", BODY, "openai"),
        ("/v1/messages", ABODY, "anthropic"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer nope"}, {"x-api-key": "nope"}, {"authorization": "Basic x"}],
)
def test_requests_without_a_valid_key_are_refused(
    sims: Sims, gateway_for: Any, path: str, body: Any, shape: str, headers: dict[str, str]
) -> None:
    gw = gateway_for(route_for(sims.oa1))
    r = httpx.post(gw.url + path, json=body, headers=headers)
    assert r.status_code == 401
    err = r.json()
    if shape == "openai":  # OpenAI's own answer to a bad key (one table with the simulator)
        assert err["error"]["type"] == "invalid_request_error"
        assert err["error"]["code"] == "invalid_api_key"
    else:
        assert err["type"] == "error"
        assert err["error"]["type"] == "authentication_error"
    assert chat_attempts(sims.oa1) == 0
    assert httpx.get(gw.url + "/admin/targets", headers=headers).status_code == 401
    assert httpx.get(gw.url + "/v1/models", headers=headers).status_code == 401


def test_both_key_headers_are_accepted_and_keys_are_stored_hashed(
    sims: Sims, gateway_for: Any
) -> None:
    gw = gateway_for(route_for(sims.oa1))
    for headers in ({"authorization": f"Bearer {CLIENT_KEY}"}, {"x-api-key": "another-key"}):
        assert httpx.post(gw.url + "/v1/chat/completions", json=BODY, headers=headers).is_success
    check: KeyCheck = gw.gateway.auth
    assert CLIENT_KEY.encode() not in repr(vars(check)).encode()
    assert all(len(d) == 32 for d in check._digests)


def test_auth_can_be_disabled_explicitly(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.an1), auth_disabled=True)
    r = httpx.post(gw.url + "/v1/messages", json=ABODY)
    assert r.status_code == 200
    assert r.json()["type"] == "message"


def test_missing_client_keys_fail_at_start_not_per_request(monkeypatch: Any) -> None:
    from drkit.errors import SecretMissing

    monkeypatch.delenv("DRKIT_GATEWAY_KEYS", raising=False)
    with pytest.raises(SecretMissing, match="DRKIT_GATEWAY_KEYS"):
        client_key_hashes(GatewayConfig(routes=()))


def test_models_lists_the_routes_for_both_sdks(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1), route_for(sims.an1, name="fast"))
    with openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY) as oc:
        assert [m.id for m in oc.models.list()] == ["assistant", "fast"]
    with anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY) as ac:
        assert [m.id for m in ac.models.list()] == ["assistant", "fast"]


def test_admin_shows_each_target(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2))
    data = gw.admin()
    assert [(t["name"], t["state"], t["provider"]) for t in data["targets"]] == [
        ("openai-1", "healthy", "openai"),
        ("anthropic-2", "healthy", "anthropic"),
    ]
    assert data["shared_state"] == "local"
    assert SIM_KEYS["openai"] not in json.dumps(data)


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/chat/completions", {**BODY, "model": "nope"}, 404, "no route named 'nope'"),
        ("/v1/messages", {**ABODY, "model": "nope"}, 404, "assistant"),
        ("/v1/chat/completions", "not json", 400, "not valid JSON"),
        ("/v1/messages", [1, 2], 400, "JSON object"),
        ("/v1/chat/completions", {"messages": BODY["messages"]}, 400, "needs `model`"),
        ("/v1/messages", {**ABODY, "model": None}, 400, "this gateway serves: assistant"),
    ],
)
def test_bad_requests_get_a_clear_error_in_the_clients_dialect(
    sims: Sims, gateway_for: Any, path: str, body: Any, status: int, needle: str
) -> None:
    gw = gateway_for(route_for(sims.oa1))
    content = body if isinstance(body, str) else json.dumps(body)
    r = httpx.post(gw.url + path, content=content, headers=gw.headers())
    assert r.status_code == status
    assert needle in r.text
    assert chat_attempts(sims.oa1) == 0


def test_untranslatable_requests_are_refused_up_front(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.an1, sims.oa2))
    with (
        openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0) as oc,
        pytest.raises(openai.BadRequestError, match="cannot translate"),
    ):
        oc.chat.completions.create(model="assistant", messages=BODY["messages"], n=2)  # type: ignore[arg-type]
    assert chat_attempts(sims.an1) == 0


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [400, 503])
def test_provider_keys_never_reach_the_client(
    sims: Sims, gateway_for: Any, client: str, status: int
) -> None:
    """A provider that echoes the key in its error body: the gateway masks it."""
    gw = gateway_for(route_for(sims.oa1, sims.an1))
    for sim in (sims.oa1, sims.an1):
        sim.set_faults(
            {"kind": "error", "status": status, "message": f"bad key {SIM_KEYS[sim.dialect]}"}
        )
    path, body = ("/v1/chat/completions", BODY) if client == "openai" else ("/v1/messages", ABODY)
    r = httpx.post(gw.url + path, json=body, headers=gw.headers())
    assert r.status_code == status
    assert "bad key" in r.text
    for key in SIM_KEYS.values():
        assert key not in r.text
        assert key not in json.dumps(dict(r.headers))
        for ev in gw.events.events:
            assert key not in json.dumps(ev.to_dict())
    metrics = httpx.get(gw.url + "/metrics").text
    assert all(key not in metrics for key in SIM_KEYS.values())


def test_config_reprs_do_not_show_inline_keys() -> None:
    from drkit.gateway.config import TargetConfig
    from drkit.types import Secret

    t = TargetConfig("t", "openai", "m", "http://127.0.0.1:1/v1", api_key=Secret("sk-inline-123"))
    assert "sk-inline-123" not in repr(t)
    cfg = GatewayConfig(routes=(), client_keys=(Secret("client-inline-1"),))
    assert "client-inline-1" not in repr(cfg)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_request_body_over_the_limit_is_a_413_before_it_is_parsed(
    sims: Sims, gateway_for: Any, chunked: bool
) -> None:
    gw = gateway_for(route_for(sims.oa1), max_request_body=64 * 1024)
    big = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 100_000}]})
    content: Any = big.encode()
    if chunked:  # no content-length: the limit is counted while reading
        content = iter([content[i : i + 8192] for i in range(0, len(content), 8192)])
    r = httpx.post(gw.url + "/v1/chat/completions", content=content, headers=gw.headers())
    assert r.status_code == 413
    assert "max_request_body_mib" in r.json()["error"]["message"]
    assert chat_attempts(sims.oa1) == 0
    # under the limit it is served, and the SDKs see the 413 as their own error type
    assert httpx.post(gw.url + "/v1/chat/completions", json=BODY, headers=gw.headers()).is_success
    with (
        anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0) as ac,
        pytest.raises(anthropic.APIStatusError) as err,
    ):
        ac.messages.create(
            model="assistant", max_tokens=5, messages=[{"role": "user", "content": "x" * 100_000}]
        )
    assert err.value.status_code == 413


def test_a_non_json_upstream_error_is_not_labelled_json(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1))
    sims.oa1.set_faults({"kind": "error", "status": 400, "body": "<html>Bad Request</html>"})
    r = httpx.post(gw.url + "/v1/chat/completions", json=BODY, headers=gw.headers())
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert "<html>Bad Request</html>" in r.json()["error"]["message"]  # a JSON body, truly


def _gateway_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "drkit.gateway"]


def test_every_request_is_logged_once_at_info_with_its_outcome(
    sims: Sims, gateway_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2))
    sims.oa1.set_faults({"kind": "error", "status": 503})
    with caplog.at_level(logging.INFO, logger="drkit.gateway"):
        assert httpx.post(gw.url + "/v1/chat/completions", json=BODY, headers=gw.headers())
        with httpx.stream(
            "POST", gw.url + "/v1/messages", json={**ABODY, "stream": True}, headers=gw.headers()
        ) as r:
            r.read()
        httpx.post(gw.url + "/v1/messages", json={**ABODY, "model": "nope"}, headers=gw.headers())
        # a stream's line is written when the server has finished it, which may come a
        # moment after the client read the last byte: wait for it (bounded)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(_gateway_lines(caplog)) < 3:
            time.sleep(0.01)
    lines = sorted(_gateway_lines(caplog), key=lambda r: (r.dialect != "openai", r.status))
    assert len(lines) == 3
    first = vars(lines[0])  # the fields are the record's extra
    assert first["route"] == "assistant"
    assert first["target"] == "anthropic-2"
    assert first["attempts"] == 2
    assert first["status"] == 200
    assert first["failover"] == "openai-1:status_5xx"
    assert first["latency_ms"] > 0
    assert "route=assistant dialect=openai target=anthropic-2 attempts=2 status=200" in (
        lines[0].getMessage()
    )
    assert vars(lines[1])["dialect"] == "anthropic"
    assert vars(lines[2])["status"] == 404
    assert vars(lines[2])["route"] is None
