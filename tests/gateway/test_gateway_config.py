"""The gateway's config from a real plan file (drkit.plan's loader and models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.errors import PlanError, SecretMissing
from drkit.gateway.config import client_key_hashes, from_plan, resolve_api_key
from drkit.plan.loader import load_plan

PLAN = """
version: 1
name: cfg-test
tiers: {critical: {rto: 5m, rpo: 15m}}
repositories:
  primary: {name: primary, url: "file:///tmp/drkit-cfg-test", region: eu-west,
            password_env: DRKIT_PASSWORD}
serving:
  auth: {client_keys_env: CFG_TEST_KEYS}
  gateway:
    retry_budget: 0.1
    max_request_body_mib: 4
    health: {eject_after: 5, eject_for: 10s, probe_every: 3s}
    redis_url_env: CFG_TEST_REDIS
  routes:
    - name: assistant
      tier: critical
      on_stream_failure: continue
      deadlines: {connect: 1s, first_token: 4s, stream_idle: 6s, total: 90s}
      targets:
        - {name: a-eu, provider: anthropic, region: eu-west, model: m1,
           base_url: "https://api.anthropic.com/", api_key_env: CFG_TEST_A,
           system_prompt: "Be brief.", params: {temperature: 0.2}}
        - {name: o-us, provider: openai, region: us-east, model: m2,
           base_url: "https://api.openai.com/v1", api_key_env: CFG_TEST_O}
"""


def test_plan_serving_maps_onto_the_gateway_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "drkit.yaml"
    path.write_text(PLAN)
    monkeypatch.setenv("CFG_TEST_REDIS", "redis://127.0.0.1:1/0")
    cfg = from_plan(load_plan(path))
    (route,) = cfg.routes
    assert route.on_stream_failure == "continue"
    assert (route.deadlines.connect, route.deadlines.first_token) == (1.0, 4.0)
    assert (route.deadlines.stream_idle, route.deadlines.total) == (6.0, 90.0)
    a, o = route.targets
    assert (a.provider, a.base_url, a.system_prompt, dict(a.params)) == (
        "anthropic",
        "https://api.anthropic.com",
        "Be brief.",
        {"temperature": 0.2},
    )
    assert (o.provider, o.region, o.api_key_env) == ("openai", "us-east", "CFG_TEST_O")
    h = cfg.health
    assert (h.eject_after, h.base_ejection, h.max_probe_interval) == (5, 10.0, 3.0)
    assert h.retry_budget_ratio == 0.1
    assert cfg.max_request_body == 4 * 1024 * 1024
    assert cfg.redis_url == "redis://127.0.0.1:1/0"
    assert cfg.client_keys_env == "CFG_TEST_KEYS"

    monkeypatch.setenv("CFG_TEST_KEYS", "k1, k2")
    assert len(client_key_hashes(cfg)) == 2
    with pytest.raises(SecretMissing, match="CFG_TEST_A"):
        resolve_api_key(a)
    monkeypatch.setenv("CFG_TEST_A", "sk-a")
    assert resolve_api_key(a).reveal() == "sk-a"  # type: ignore[union-attr]


def test_a_plan_without_routes_cannot_be_served(tmp_path: Path) -> None:
    path = tmp_path / "drkit.yaml"
    path.write_text(PLAN.split("  routes:")[0])
    with pytest.raises(PlanError, match="no serving routes"):
        from_plan(load_plan(path))


def test_an_unset_redis_env_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "drkit.yaml"
    path.write_text(PLAN)
    with pytest.raises(SecretMissing, match="CFG_TEST_REDIS"):
        from_plan(load_plan(path))
