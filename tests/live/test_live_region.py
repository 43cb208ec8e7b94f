"""The annual regional exercise: ``region-outage --live`` drains a region on every route of
the running gateway that has a target there; only such a run satisfies
``testing.regional_failover_every``. One real ``drkit gateway serve`` with three routes
(assistant and search in both regions, batch in us-east only) serves the live tests here."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.live.conftest import (
    ADMIN_KEY,
    ENV,
    Load,
    Sims,
    admin_view,
    drkit,
    more_routes,
    run_cli,
    serve,
    wait_for,
    write_plan,
)

from drkit.state.store import StateStore
from drkit.workspace import Workspace

DRAINED = {"assistant": "us-secondary", "search": "us-search"}
HOME = {"assistant": "eu-primary", "search": "eu-search"}


@pytest.fixture(scope="module")
def regional(
    sims_session: Sims, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The plan (max_fraction 1: the drain is allowed) and its running gateway's URL."""
    plan = write_plan(
        tmp_path_factory.mktemp("regional"),
        sims_session,
        max_fraction=1.0,
        routes=more_routes(sims_session),
    )
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        with serve(plan) as url:
            yield plan, url


def region_drill(plan: Path, url: str, *extra: str) -> list[str]:
    return [
        "drill",
        "run",
        "region-outage",
        "--plan",
        str(plan),
        "--live",
        url,
        "--region",
        "eu-west",
        "--owner",
        "regional@ci",
        *extra,
    ]


def faults_of(url: str) -> list[dict[str, object]]:
    r = httpx.get(url + "/admin/live-faults", headers={"x-api-key": ADMIN_KEY}, timeout=5)
    r.raise_for_status()
    out: list[dict[str, object]] = r.json()["live_faults"]
    return out


def test_live_region_outage_drains_every_route_of_the_region_and_measures_failback(
    sims: Sims, regional: tuple[Path, str]
) -> None:
    plan, url = regional
    models = ("assistant", "search")
    with Load([url], clients=4, models=models) as load:
        wait_for(lambda: len(load.answers) >= 20, what="steady load")
        started = time.time()
        done = run_cli(*region_drill(plan, url, "--duration", "2s", "--lease", "5s", "--json"))
        ended = time.time()
    assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads(done.stdout)
    m = journal["metrics"]
    assert journal["scenario"] == "region-outage"
    assert m["live"] == 1
    assert m["region_drained"] == 1  # every route with a target in eu-west, all its traffic
    assert m["share"] >= 0.95  # all but those in flight at the install left the region
    assert m["client_visible_errors"] == 0
    assert not load.errors
    steady = next(st["data"] for st in journal["steps"] if st["phase"] == "steady_state")
    assert steady["routes_drained"] == ["assistant", "search"]
    assert steady["routes_not_affected"] == ["batch"]
    fault = next(st["data"]["fault"] for st in journal["steps"] if st["phase"] == "fault")
    assert started < fault["started_at"] < fault["ends_at"] < ended
    for route, secondary in DRAINED.items():
        assert m[f"route.{route}.requests"] >= 3, m
        assert m[f"route.{route}.affected"] >= 1, m
        assert m[f"route.{route}.client_visible_errors"] == 0
        assert m[f"route.{route}.carried_after_s"] < 2
        assert m[f"route.{route}.failback_s"] < 5  # real traffic back on eu-west, per route
        # answers completed well inside the fault's window (not in flight at either end)
        during = [
            a
            for a in load.answers
            if a.model == route and fault["started_at"] + 0.3 <= a.at <= fault["ends_at"] - 0.1
        ]
        assert during, route
        assert all(a.target == secondary for a in during), route
    assert m["failback_s"] == max(m["route.assistant.failback_s"], m["route.search.failback_s"])
    with Workspace.load(plan) as ws:
        assert ws.last_success("regional_failover") is not None


def test_kill_9_of_the_regional_drill_lifts_every_route_within_the_lease(
    sims: Sims, regional: tuple[Path, str]
) -> None:
    plan, url = regional
    with Load([url], clients=2, models=("assistant", "search")) as load:
        wait_for(lambda: len(load.answers) >= 10, what="steady load")
        with (plan.parent / "drill-kill9.log").open("wb") as log:
            proc = subprocess.Popen(  # a 3s lease: a loaded machine may stall a renewal
                drkit(*region_drill(plan, url, "--duration", "60s", "--lease", "3s")),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            wait_for(
                lambda: len([f for f in faults_of(url) if f["state"] == "active"]) == 2,
                timeout=30,
                what="the drill's fault on both routes",
            )
            active = [f for f in faults_of(url) if f["state"] == "active"]
            assert {f["route"] for f in active} == {"assistant", "search"}
            assert len({f["drill"] for f in active}) == 1  # one drill, one id and owner
            assert {f["owner"] for f in active} == {"regional@ci"}
            view = admin_view(url)
            marked = {t["name"]: t["live_fault"] for t in view["targets"]}
            assert marked["eu-primary"]["owner"] == "regional@ci"
            assert marked["eu-search"]["route"] == "search"
            assert marked["us-batch"] is None
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            killed = time.time()
            proc.wait(timeout=10)
            wait_for(lambda: not admin_view(url)["live_faults"], timeout=15, what="all lifted")
            gone = time.time()
            wait_for(
                lambda: (
                    {a.model for a in load.since(gone + 0.3) if a.target in HOME.values()}
                    == set(HOME)
                ),
                timeout=10,
                what="both routes back on eu-west",
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    drill = active[0]["drill"]
    lifted = [f for f in faults_of(url) if f["drill"] == drill]
    assert {f["route"] for f in lifted} == {"assistant", "search"}
    for f in lifted:  # the gateway's own record: the 3s lease ran out after the kill
        assert f["why"] == "lease"
        assert float(f["lease_until"]) <= killed + 3.0 + 0.5  # a renewal in flight may land
        assert float(f["lifted_at"]) - float(f["lease_until"]) < 2.0
    assert not load.errors


def test_a_route_that_fails_its_preflight_refuses_the_whole_drill(
    sims: Sims, regional: tuple[Path, str], tmp_path: Path
) -> None:
    plan, url = regional
    other = {
        "drill": "other-1",
        "owner": "someone@else",
        "route": "search",
        "targets": ["us-search"],
        "fraction": 0.01,
        "duration_s": 30,
        "lease_s": 30,
    }
    headers = {"x-api-key": ADMIN_KEY}
    r = httpx.post(url + "/admin/live-faults", json=other, headers=headers, timeout=5)
    assert r.status_code == 201, r.text
    try:
        done = run_cli(*region_drill(plan, url, "--duration", "5s"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert "live drill other-1 (someone@else) is already running on route search" in (
            done.stderr
        )
        assert [f["drill"] for f in faults_of(url) if f["state"] == "active"] == ["other-1"]
        # --subject narrows the drill to a route; a target in the region is needed there
        narrowed = run_cli(*region_drill(plan, url, "--duration", "5s", "--subject", "batch"))
        assert narrowed.returncode == 2
        assert "route batch has no target in region 'eu-west'" in narrowed.stderr
    finally:
        httpx.delete(url + "/admin/live-faults/other-1", headers=headers, timeout=5)
    # a route with every target in the region would fail all its clients: refused, by name
    lonely = write_plan(tmp_path, sims, max_fraction=1.0, routes=more_routes(sims))
    lonely.write_text(
        lonely.read_text().replace(
            "name: us-search, provider: openai, region: us-east",
            "name: us-search, provider: openai, region: eu-west",
        )
    )
    refused = run_cli(*region_drill(lonely, url, "--duration", "5s"))
    assert refused.returncode == 2
    assert "route search has no target outside region eu-west" in refused.stderr
    assert not [f for f in faults_of(url) if f["state"] == "active"]


def test_only_a_live_region_outage_counts_as_the_regional_exercise(
    sims: Sims, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, sims)
    state = StateStore(plan.parent / ".drkit" / "state.db")
    now = time.time()
    rehearsal = {"id": "r-1", "scenario": "region-outage", "verdict": "pass", "started_at": now}
    state.record_drill({**rehearsal, "metrics": {"serving_rto_s": 1.0}})
    state.close()
    with Workspace.load(plan) as ws:
        assert ws.last_success("regional_failover") is None
        state = ws.state()
        # a live drill on part of the region (--subject, a fraction): not the exercise
        narrowed = {"live": 1.0, "region_drained": 0.0}
        state.record_drill({**rehearsal, "id": "r-2", "metrics": narrowed})
        assert ws.last_success("regional_failover") is None
        failed = {**rehearsal, "id": "r-3", "verdict": "fail", "started_at": now + 1}
        state.record_drill({**failed, "metrics": narrowed})
        assert ws.last_failure("regional_failover") is None
        drained = {"live": 1.0, "region_drained": 1.0}
        state.record_drill({**rehearsal, "id": "r-4", "metrics": drained})
        assert ws.last_success("regional_failover") is not None
