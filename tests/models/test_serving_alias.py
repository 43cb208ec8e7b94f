"""Serving follows the alias: a route target naming ``@MODEL:ALIAS`` is sent the upstream
model of the version the alias names now, a running gateway picks up an alias change
within seconds (no restart; several gateways reading the same state), and the version
that served is in the response headers and the gateway's events."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from tests.servers import free_port, uvicorn_in_thread, wait_ready

from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.errors import PlanError
from drkit.gateway.app import create_app
from drkit.gateway.config import GatewayConfig, RouteConfig, TargetConfig
from drkit.gateway.events import MemoryEventSink
from drkit.lineage.registry import Registry
from drkit.state.store import StateStore

DRKIT = Path(sys.executable).parent / "drkit"
KEY_ENV = "DRKIT_TEST_SIM_KEY"
SIM_KEY = "sk-sim-alias-0123456789"


@pytest.fixture(autouse=True)
def _sim_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SIM_KEY)


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator("openai", api_key=SIM_KEY) as s:
        yield s


def _registry(path: Path) -> Registry:
    reg = Registry(StateStore(path))
    reg.register("assistant", "1", upstream={"openai": "sim-small"})
    reg.register("assistant", "2", upstream={"openai": "sim-large"})
    reg.set_alias("assistant", "champion", "1", reason="first")
    return reg


def _config(sim: ProviderSimulator, model: str = "@assistant:champion") -> GatewayConfig:
    target = TargetConfig("sim-1", "openai", model, sim.base_url, api_key_env=KEY_ENV)
    return GatewayConfig(routes=(RouteConfig("assistant", (target,)),), auth_disabled=True)


@contextlib.contextmanager
def _gateway(sim: ProviderSimulator, state_path: Path) -> Iterator[tuple[str, MemoryEventSink]]:
    events = MemoryEventSink()
    state = StateStore(state_path)  # its own connection: as another process would
    app = create_app(_config(sim), events=events, resolver=Registry(state).serving)
    app.state.gateway.aliases.refresh = 0.2
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    try:
        with uvicorn_in_thread(config, what="the gateway") as url:
            yield url, events
    finally:
        state.close()


def _served(url: str) -> tuple[str, str]:
    """(x-drkit-model-version, the model name the upstream received) of one SDK call."""
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
    raw = client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "user", "content": "hi"}]
    )
    raw.parse()
    return raw.headers["x-drkit-model-version"], raw.headers["x-drkit-target"]


def _ask(url: str) -> None:
    """One client request (whichever target serves it)."""
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
    client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "x"}])


def _until(check: object, want: str, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while True:
        got = check()  # type: ignore[operator]
        if got == want:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"still {got!r}, want {want!r}"
        time.sleep(0.05)


def test_running_gateways_follow_an_alias_change(sim: ProviderSimulator, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    reg = _registry(db)
    with _gateway(sim, db) as (one, events1), _gateway(sim, db) as (two, events2):
        for url in (one, two):
            assert _served(url) == ("assistant@1", "sim-1")
            assert sim.last_request is not None
            assert sim.last_request["model"] == "sim-small"
        # streaming: the header is there before the first token
        client = openai.OpenAI(base_url=one + "/v1", api_key="unused")
        with client.chat.completions.with_streaming_response.create(
            model="assistant", messages=[{"role": "user", "content": "hi"}], stream=True
        ) as resp:
            assert resp.headers["x-drkit-model-version"] == "assistant@1"
            assert "".join(resp.iter_lines())

        reg.set_alias("assistant", "champion", "2", reason="promoted in the test")
        for url in (one, two):
            _until(lambda u=url: _served(u)[0], "assistant@2")
            assert sim.last_request is not None
            assert sim.last_request["model"] == "sim-large"
        for events in (events1, events2):
            moves = [e.data for e in events.events if e.kind == "model_version"]
            assert [(m["version"], m["previous"]) for m in moves] == [
                ("assistant@1", None),
                ("assistant@2", "assistant@1"),
            ]
            assert moves[-1]["upstream"] == "sim-large"
            assert moves[-1]["ref"] == "@assistant:champion"
    reg.state.close()


def test_a_refresh_that_fails_keeps_serving_the_last_version(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    reg = _registry(db)
    # version 3 has no upstream for openai: the alias names something this target
    # cannot serve; the gateway keeps serving version 1 and says why in an event
    reg.register("assistant", "3", upstream={"anthropic": "claude-x"})
    with _gateway(sim, db) as (url, events):
        reg.set_alias("assistant", "champion", "3", reason="wrong provider")
        deadline = time.monotonic() + 5
        while not any(e.kind == "model_unresolved" for e in events.events):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _served(url)[0] == "assistant@1"
        bad = next(e for e in events.events if e.kind == "model_unresolved")
        assert bad.data["serving"] == "assistant@1"
        assert "no upstream model for provider 'openai'" in bad.data["error"]
    reg.state.close()


def test_an_alias_that_does_not_resolve_is_refused_before_serving(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    reg = _registry(tmp_path / "state.db")
    resolver = reg.serving
    with pytest.raises(PlanError, match="@assistant:canary does not resolve"):
        create_app(_config(sim, "@assistant:canary"), resolver=resolver)
    with pytest.raises(PlanError, match="no model registry"):
        create_app(_config(sim))
    with pytest.raises(PlanError, match="@MODEL:ALIAS"):
        create_app(_config(sim, "@assistant"), resolver=resolver)
    # a plain model name needs no registry at all
    assert create_app(_config(sim, "sim-large")).state.gateway.aliases is None
    reg.state.close()


def _plan(path: Path, sim: ProviderSimulator, model: str) -> Path:
    path.write_text(
        f"""
version: 1
name: alias-serving
tiers:
  critical: {{rto: 5m, rpo: 15m}}
repositories:
  primary: {{name: primary, url: "file://{path.parent}/repo", region: eu-west,
             password_env: DRKIT_PASSWORD}}
serving:
  auth: {{disabled: true}}
  routes:
    - name: assistant
      tier: critical
      targets:
        - {{name: sim-1, provider: openai, region: eu-west, model: "{model}",
           base_url: "{sim.base_url}", api_key_env: {KEY_ENV}}}
"""
    )
    return path


def test_drkit_gateway_serve_follows_drkit_model_alias_set(
    sim: ProviderSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "state.db"
    monkeypatch.setenv("DRKIT_STATE", str(db))
    _registry(db).state.close()
    plan = _plan(tmp_path / "drkit.yaml", sim, "@assistant:champion")
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(url + "/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_ready(up, what="drkit gateway serve", proc=proc, log=log)
        assert _served(url)[0] == "assistant@1"
        code = main(["model", "alias", "set", "assistant", "champion", "2", "--reason", "test",
                     "--plan", str(plan)])  # fmt: skip
        assert code == 0
        took = _until(lambda: _served(url)[0], "assistant@2")
        assert took < 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    state = StateStore(db)
    try:
        served = [e.data["version"] for e in state.events(kind="gateway.model_version")]
    finally:
        state.close()
    assert served == ["assistant@1", "assistant@2"]

    # an alias that names nothing: a clean exit 2 before anything is served
    bad = _plan(tmp_path / "bad.yaml", sim, "@assistant:canary")
    result = subprocess.run(
        [str(DRKIT), "gateway", "serve", "--plan", str(bad), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert result.returncode == 2, result.stderr
    assert "@assistant:canary does not resolve" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_quality_canary_sends_what_the_alias_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The canary probes a target following an alias with the upstream model the alias
    names now: moved to a version whose model answers wrongly, the target is held."""
    from drkit.gateway.config import from_plan
    from drkit.gateway.server import uvicorn_config
    from drkit.plan.loader import load_plan
    from drkit.workspace.canary import canary_from_plan

    reg = _registry(tmp_path / "state.db")
    (tmp_path / "canary.jsonl").write_text(
        "".join(
            f'{{"id": "c{i}", "prompt": "word{i}", "expected": "word{i}", "scorer": "contains"}}\n'
            for i in range(3)
        )
    )
    with (
        ProviderSimulator("openai", mode="echo", api_key=SIM_KEY) as good,
        ProviderSimulator("openai", mode="echo", api_key=SIM_KEY) as other,
    ):
        good.set_faults({"kind": "wrong_answer", "model": "sim-large"})
        plan = tmp_path / "drkit.yaml"
        plan.write_text(
            f"""
version: 1
name: alias-canary
tiers:
  critical: {{rto: 5m, rpo: 1h, quality: {{floor: 0.8}}}}
repositories:
  primary: {{name: primary, url: "file://{tmp_path}/repo", region: eu-west}}
serving:
  auth: {{disabled: true}}
  routes:
    - name: assistant
      tier: critical
      canary: {{eval_set: canary.jsonl, every: 0.25s, max_share: 0.8}}
      targets:
        - {{name: sim-1, provider: openai, region: eu-west, model: "@assistant:champion",
           base_url: "{good.base_url}", api_key_env: {KEY_ENV}}}
        - {{name: sim-2, provider: openai, region: eu-west, model: sim-small,
           base_url: "{other.base_url}", api_key_env: {KEY_ENV}}}
"""
        )
        loaded = load_plan(plan)
        canary = canary_from_plan(loaded)
        assert canary is not None
        config = uvicorn_config(
            from_plan(loaded), events=MemoryEventSink(), canary=canary, resolver=reg.serving
        )
        config.app.state.gateway.aliases.refresh = 0.2  # type: ignore[attr-defined]
        with uvicorn_in_thread(config, what="the gateway") as url:
            # the canary spends a share of client traffic: keep some flowing
            deadline = time.monotonic() + 10
            while canary.quality["sim-1"].rounds < 2:  # version 1: sim-small answers right
                assert time.monotonic() < deadline, canary.snapshot()
                _ask(url)
            assert not canary.is_held("sim-1")
            reg.set_alias("assistant", "champion", "2", reason="the regressed release")
            deadline = time.monotonic() + 10
            while not canary.is_held("sim-1"):
                assert time.monotonic() < deadline, canary.snapshot()
                _ask(url)
            assert not canary.is_held("sim-2")
    reg.state.close()
