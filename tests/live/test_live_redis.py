"""Two ``drkit gateway serve`` processes sharing Redis both honour a live fault and its end."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.live.conftest import (
    Load,
    Sims,
    admin_view,
    drkit,
    lifted_fault,
    run_cli,
    serve_many,
    wait_for,
    write_plan,
)


def test_two_gateways_sharing_redis_honour_the_fault_and_its_end(
    sims: Sims, redis_url: str, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, sims)
    args = ("--redis-url", redis_url)
    with serve_many(plan, 2, *args) as (a, b), Load([a, b], clients=4) as load:
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
    # each process's own record: the lease (1s) ran out after the kill and ended it there
    for fault in ended:
        assert fault["why"] == "lease"
        assert fault["lease_until"] <= killed + 1.0 + 0.5  # a renewal in flight may land late
        assert fault["lifted_at"] - fault["lease_until"] < 1.0
    assert all(not x.reasons and x.target == "eu-primary" for x in load.since(gone))
    assert not load.errors
