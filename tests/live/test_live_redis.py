"""Two ``drkit gateway serve`` processes sharing Redis both honour a live fault and its end."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.live.conftest import (
    ENV,
    Load,
    Sims,
    admin_view,
    drkit,
    lifted_fault,
    more_routes,
    run_cli,
    serve_many,
    wait_for,
    write_plan,
)


@pytest.fixture(scope="module")
def pair(
    sims_session: Sims, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, str]]:
    """Two gateway processes sharing Redis (started once for this file): the plan (three
    routes, a drain allowed) and their URLs."""
    plan = write_plan(
        tmp_path_factory.mktemp("pair"),
        sims_session,
        max_fraction=1.0,
        routes=more_routes(sims_session),
    )
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        with serve_many(plan, 2, "--redis-url", redis_url) as (a, b):
            yield plan, a, b


def test_two_gateways_sharing_redis_honour_the_fault_and_its_end(
    sims: Sims, pair: tuple[Path, str, str]
) -> None:
    plan, a, b = pair
    with Load([a, b], clients=4) as load:
        wait_for(lambda: len(load.answers) >= 20, what="steady load")
        # a drill run to its end, installed through a only
        done = run_cli(
            "drill",
            "run",
            "provider-outage",
            "--plan",
            str(plan),
            "--live",
            a,
            "--fraction",
            "0.3",
            "--duration",
            "3s",
            "--json",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        m = json.loads(done.stdout)["metrics"]
        assert m["processes"] == 2  # a answers with b's figures too
        assert not admin_view(a)["live_faults"]
        assert not admin_view(b)["live_faults"]

        # a drill killed with -9: b, which never heard from it, lifts by the lease
        proc = subprocess.Popen(
            drkit(
                "drill",
                "run",
                "provider-outage",
                "--plan",
                str(plan),
                "--live",
                a,
                "--fraction",
                "0.3",
                "--duration",
                "60s",
                "--owner",
                "redis@ci",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: bool(admin_view(b)["live_faults"]), timeout=30, what="fault on b")
            owner = next(t for t in admin_view(b)["targets"] if t["name"] == "eu-primary")
            assert owner["live_fault"]["owner"] == "redis@ci"
            on = time.time()
            wait_for(  # b applies the fault a installed
                lambda: any("live_drill" in x.reasons and x.url == b for x in load.since(on)),
                what="faulted requests on b",
            )
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            killed = time.time()
            proc.wait(timeout=10)
            wait_for(lambda: not admin_view(a)["live_faults"], timeout=10, what="a lifts")
            wait_for(lambda: not admin_view(b)["live_faults"], timeout=10, what="b lifts")
            ended = [lifted_fault(a), lifted_fault(b)]
            gone = time.time()
            wait_for(lambda: len(load.since(gone)) >= 10, what="requests after the lift")
        finally:
            if proc.poll() is None:
                proc.kill()
    # each process's own record: the lease (3s) ran out after the kill and ended it there
    for fault in ended:
        assert fault["why"] == "lease"
        assert fault["lease_until"] <= killed + 3.0 + 1.0  # a renewal in flight may land late
        assert fault["lifted_at"] - fault["lease_until"] < 2.0
    assert all(not x.reasons and x.target == "eu-primary" for x in load.since(gone))
    assert not load.errors


def test_the_regional_drain_holds_on_every_process_and_route(
    sims: Sims, pair: tuple[Path, str, str]
) -> None:
    plan, a, b = pair
    models = ("assistant", "search")
    with Load([a, a, b, b], clients=4, models=models) as load:  # each route on each process
        wait_for(lambda: len(load.answers) >= 20, what="steady load")
        done = run_cli(
            "drill",
            "run",
            "region-outage",
            "--plan",
            str(plan),
            "--live",
            a,  # installed through a only
            "--region",
            "eu-west",
            "--duration",
            "6s",  # b must answer both routes well inside the window
            "--lease",
            "5s",
            "--json",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        journal = json.loads(done.stdout)
        fault = next(st["data"]["fault"] for st in journal["steps"] if st["phase"] == "fault")
        assert not admin_view(a)["live_faults"]
        assert not admin_view(b)["live_faults"]
    m = journal["metrics"]
    assert m["processes"] == 2  # a answers with b's figures too
    assert m["region_drained"] == 1
    inside = [  # answered well inside the window, by either process
        x for x in load.answers if fault["started_at"] + 1.2 <= x.at <= fault["ends_at"] - 0.1
    ]
    for route, secondary in (("assistant", "us-secondary"), ("search", "us-search")):
        assert m[f"route.{route}.affected"] >= 1, m
        assert m[f"route.{route}.client_visible_errors"] == 0
        on_b = [x for x in inside if x.model == route and x.url == b]
        assert on_b, route  # b adopted the fault of both routes (within its 1s refresh)
        assert all(x.target == secondary for x in on_b), route
    assert not load.errors
