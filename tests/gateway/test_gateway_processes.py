"""``drkit gateway serve`` as real processes: several of them sharing health through Redis."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwkit import CLIENT_KEY, CLIENT_KEYS_ENV, KEY_ENV, Sims, chat_attempts, free_port
from tests.servers import listening, wait_ready

from drkit.gateway.events import read_events

DRKIT = Path(sys.executable).parent / "drkit"


def write_plan(path: Path, sims: Sims, *, probe_every: str = "300ms") -> Path:
    path.write_text(
        f"""
version: 1
name: gateway-test
tiers:
  critical: {{rto: 5m, rpo: 15m}}
repositories:
  primary: {{name: primary, url: "file://{path.parent}/repo", region: eu-west,
             password_env: DRKIT_PASSWORD}}
serving:
  auth: {{client_keys_env: {CLIENT_KEYS_ENV}}}
  gateway:
    health: {{eject_after: 3, eject_for: 30s, probe_every: {probe_every}}}
  routes:
    - name: assistant
      tier: critical
      deadlines: {{connect: 1s, first_token: 1s, stream_idle: 1s, total: 10s}}
      targets:
        - {{name: openai-1, provider: openai, region: eu-west, model: sim-large,
           base_url: "{sims.oa1.base_url}", api_key_env: {KEY_ENV["openai"]}}}
        - {{name: anthropic-2, provider: anthropic, region: us-east, model: sim-large,
           base_url: "{sims.an2.base_url}", api_key_env: {KEY_ENV["anthropic"]}}}
"""
    )
    return path


@contextlib.contextmanager
def serve(plan: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    log = plan.parent / f"gateway-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        # a gateway that exits or never listens fails the test with its log (tests/servers.py)
        wait_ready(listening(port), what="drkit gateway serve", proc=proc, log=log, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chat(url: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
        json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def state(url: str, target: str) -> dict[str, Any]:
    r = httpx.get(url + "/admin/targets", headers={"x-api-key": CLIENT_KEY})
    r.raise_for_status()
    return next(t for t in r.json()["targets"] if t["name"] == target)  # type: ignore[no-any-return]


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_gateway_processes_share_health_through_redis(
    sims: Sims, redis_url: str, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path / "drkit.yaml", sims)
    events = tmp_path / "events.jsonl"
    args = ("--redis-url", redis_url, "--events", str(events))
    with serve(plan, *args) as a, serve(plan, *args) as b, serve(plan, *args) as c:
        sims.oa1.set_faults({"kind": "error", "status": 503})
        for _ in range(3):
            assert chat(a).status_code == 200
        assert state(a, "openai-1")["state"] == "ejected"
        # b and c never sent a request to the primary, and agree that it is out
        wait_for(lambda: state(b, "openai-1")["state"] == "ejected")
        wait_for(lambda: state(c, "openai-1")["state"] == "ejected")
        before = chat_attempts(sims.oa1)
        for url in (b, c):
            r = chat(url)
            assert r.headers["x-drkit-target"] == "anthropic-2"
            assert r.headers["x-drkit-attempts"] == "1"
        # only probes reach the primary, about one per interval for all processes together
        wait_for(lambda: chat_attempts(sims.oa1) - before >= 1)
        probes = chat_attempts(sims.oa1) - before
        assert 1 <= probes <= 3 * 3  # interval backs off 0.15s -> 0.3s; three processes
        sims.oa1.clear_faults()
        for url in (a, b, c):
            wait_for(lambda url=url: state(url, "openai-1")["state"] == "healthy")
        for url in (a, b, c):
            assert chat(url).headers["x-drkit-target"] == "openai-1"
    kinds = [e.kind for e in read_events(events)]
    assert kinds.count("ejection") == 1  # recorded once, by the process that ejected
    assert kinds.count("recovery") == 1
    assert "failover" in kinds


def test_serve_refuses_a_taken_port_and_a_missing_key(sims: Sims, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "drkit.yaml", sims)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        taken = subprocess.run(
            [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV["anthropic"]}
    missing = subprocess.run(
        [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert missing.returncode == 2
    assert KEY_ENV["anthropic"] in missing.stderr
    assert "Try: export" in missing.stderr


@pytest.mark.parametrize("bad", ["provider: cohere", "on_stream_failure: maybe"])
def test_serve_rejects_a_bad_plan_with_its_location(sims: Sims, tmp_path: Path, bad: str) -> None:
    plan = write_plan(tmp_path / "drkit.yaml", sims)
    text = plan.read_text()
    if bad.startswith("provider"):
        text = text.replace("provider: openai", bad)
    else:
        text = text.replace(
            "tier: critical\n      deadlines", f"tier: critical\n      {bad}\n      deadlines"
        )
    plan.write_text(text)
    result = subprocess.run(
        [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "drkit.yaml:" in result.stderr
    assert "serving.routes[0]" in result.stderr
