"""Safety rails and bad input of live drills: one line, exit 2, nothing installed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.live.conftest import ADMIN_KEY, CLIENT_KEY, Sims, write_plan
from tests.servers import uvicorn_in_thread

from drkit.cli.main import main
from drkit.gateway.app import Gateway, create_app
from drkit.gateway.config import from_plan
from drkit.gateway.events import MemoryEventSink
from drkit.plan.loader import load_plan


@contextlib.contextmanager
def gateway(plan: Path) -> Iterator[tuple[str, Gateway, MemoryEventSink]]:
    events = MemoryEventSink()
    app = create_app(from_plan(load_plan(plan)), events=events)
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    with uvicorn_in_thread(config, what="the gateway") as url:
        yield url, app.state.gateway, events


def spec(**kw: Any) -> dict[str, Any]:
    base = {
        "drill": "d-1",
        "owner": "me",
        "route": "assistant",
        "targets": ["eu-primary"],
        "fraction": 0.1,
        "duration_s": 30,
        "lease_s": 5,
    }
    return {**base, **kw}


def admin(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def running(sims: Sims, tmp_path: Path) -> Iterator[tuple[Path, str, Gateway, MemoryEventSink]]:
    plan = write_plan(tmp_path, sims)
    with gateway(plan) as (url, gw, events):
        yield plan, url, gw, events


def drill(plan: Path, url: str, *extra: str) -> list[str]:
    return ["drill", "run", "provider-outage", "--plan", str(plan), "--live", url, *extra]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--fraction", "0", "--duration", "5s"), "--fraction must be in (0, 1], not 0"),
        (("--fraction", "1.5", "--duration", "5s"), "--fraction must be in (0, 1], not 1.5"),
        (
            ("--fraction", "0.6", "--duration", "5s"),
            "over the plan's testing.live_limits.max_fraction",
        ),
        (
            ("--fraction", "0.1", "--duration", "3m"),
            "over the plan's testing.live_limits.max_duration",
        ),
        (("--fraction", "0.1", "--duration", "soon"), "--duration 'soon'"),
        (("--fraction", "0.1", "--duration", "5s", "--target", "nope"), "has no target 'nope'"),
        (("--fraction", "0.1"), "needs --fraction and --duration"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    running: tuple[Path, str, Gateway, MemoryEventSink],
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    said: str,
) -> None:
    plan, url, gw, _ = running
    assert main(drill(plan, url, *extra)) == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert not gw.live.by_route
    assert not gw.live.lifted


def test_wrong_admin_key_no_secondary_and_a_second_drill_are_refused(
    sims: Sims,
    running: tuple[Path, str, Gateway, MemoryEventSink],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan, url, gw, _ = running
    args = drill(plan, url, "--fraction", "0.1", "--duration", "5s")
    monkeypatch.setenv("DRKIT_TEST_LIVE_ADMIN_KEYS", "not-the-key")
    assert main(args) == 2
    assert "refused the admin key" in capsys.readouterr().err
    monkeypatch.setenv("DRKIT_TEST_LIVE_ADMIN_KEYS", ADMIN_KEY)
    # another drill on the route
    assert httpx.post(url + "/admin/live-faults", json=spec(), headers=admin()).status_code == 201
    assert main(args) == 2
    assert "live drill d-1 (me) is already running on route assistant" in capsys.readouterr().err
    assert httpx.delete(url + "/admin/live-faults/d-1", headers=admin()).status_code == 200
    # no healthy secondary (down for real: its probes fail too)
    sims.secondary.set_faults({"kind": "error", "status": 503})
    gw.board.record_failure(gw.board.targets["us-secondary"], "connect")
    assert main(args) == 2
    assert "no healthy secondary" in capsys.readouterr().err
    assert not gw.live.by_route


def test_the_admin_api_refuses_client_keys_bad_specs_and_conflicts(
    running: tuple[Path, str, Gateway, MemoryEventSink],
) -> None:
    _, url, _gw, events = running
    post = url + "/admin/live-faults"
    assert httpx.post(post, json=spec(), headers=admin(CLIENT_KEY)).status_code == 401
    for bad, status in [
        ({"fraction": 0}, 400),
        ({"fraction": 0.9}, 400),  # over the plan's max_fraction 0.5
        ({"duration_s": 3600}, 400),  # over max_duration 2m
        ({"lease_s": -1}, 400),
        ({"targets": []}, 400),
        ({"route": "nope"}, 404),
        ({"targets": ["nope"]}, 404),
        ({"targets": ["eu-primary", "us-secondary"]}, 409),  # nothing left to serve
    ]:
        r = httpx.post(post, json=spec(**bad), headers=admin())
        assert r.status_code == status, (bad, r.text)
        assert r.json()["error"]["message"]
    assert httpx.post(post, json=spec(), headers=admin()).status_code == 201
    assert httpx.post(post, json=spec(drill="d-2"), headers=admin()).status_code == 409
    view = httpx.get(url + "/admin/targets", headers=admin(CLIENT_KEY)).json()
    primary = next(t for t in view["targets"] if t["name"] == "eu-primary")
    assert primary["live_fault"] == {
        "drill": "d-1",
        "owner": "me",
        "route": "assistant",
        "fraction": 0.1,
    }
    r = httpx.delete(url + "/admin/live-faults/d-1", headers=admin())
    assert r.json()["state"] == "lifted"
    assert r.json()["why"] == "aborted"
    renew = httpx.post(url + "/admin/live-faults/d-1/renew", headers=admin())
    assert renew.status_code == 410
    assert [e.kind for e in events.events if e.kind.startswith("live_")] == [
        "live_fault",
        "live_fault_lifted",
    ]


def test_without_admin_keys_the_live_api_is_off(
    sims: Sims, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRKIT_TEST_LIVE_ADMIN_KEYS")
    with gateway(write_plan(tmp_path, sims)) as (url, gw, _):
        r = httpx.post(url + "/admin/live-faults", json=spec(), headers=admin())
        assert r.status_code == 403
        assert "no admin keys" in r.json()["error"]["message"]
        assert not gw.live.by_route


def test_the_lease_runs_out_without_renewal(
    running: tuple[Path, str, Gateway, MemoryEventSink],
) -> None:
    import time

    _, url, gw, _events = running
    r = httpx.post(url + "/admin/live-faults", json=spec(lease_s=0.3), headers=admin())
    assert r.status_code == 201
    deadline = time.monotonic() + 3
    while gw.live.by_route and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not gw.live.by_route
    assert gw.live.lifted["d-1", "assistant"].why == "lease"
    lifted = gw.live.lifted["d-1", "assistant"]
    assert lifted.lifted_at is not None
    assert lifted.lifted_at - lifted.started_at < 0.3 + 0.25  # the timer ticks every 0.1s
