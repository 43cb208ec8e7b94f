"""A live provider-outage drill on a running ``drkit gateway serve`` under SDK load."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.live.conftest import (
    Load,
    Sims,
    admin_view,
    drkit,
    lifted_fault,
    run_cli,
    serve,
    wait_for,
    write_plan,
)

from drkit.state.store import StateStore


def run_drill(
    plan: Path, url: str, *extra: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "drill",
        "run",
        "provider-outage",
        "--plan",
        str(plan),
        "--live",
        url,
        "--json",
        "--owner",
        "tester@ci",
        *extra,
    )


def test_live_drill_faults_the_fraction_and_measures_real_traffic(
    sims: Sims, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, sims)
    with serve(plan) as url, Load([url], clients=4) as load:
        wait_for(lambda: len(load.answers) >= 20, what="steady load")
        started = time.time()
        done = run_drill(plan, url, "--fraction", "0.2", "--duration", "3s")
        ended = time.time()
        time.sleep(0.3)
    assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads(done.stdout)
    m = journal["metrics"]
    assert journal["verdict"] == "pass"
    # the gateway's own count agrees with what the SDK clients saw
    during = [a for a in load.answers if started + 0.5 <= a.at <= ended - 0.5]
    seen = sum("live_drill" in a.reasons for a in during)
    n = m["requests"]
    assert n >= 30
    # binomial: the share is within 5 standard deviations of the fraction
    assert abs(m["share"] - 0.2) <= 5 * math.sqrt(0.2 * 0.8 / n), m
    assert seen > 0
    assert m["affected"] > 0
    assert m["client_visible_errors"] == 0
    assert not load.errors
    assert all(a.ok and a.target == "us-secondary" for a in during if "live_drill" in a.reasons)
    assert m["carried_after_s"] < 3
    assert m["failback_s"] < 5  # the primary answers real requests again after the lift
    assert {"detected", "recovered"} <= {mk["name"] for mk in journal["markers"]}
    # after the end every request goes to the primary again, unfaulted
    after = [a for a in load.answers if a.at > ended + 0.1]
    assert after
    assert all(a.target == "eu-primary" and not a.reasons for a in after)
    state = StateStore(plan.parent / ".drkit" / "state.db")
    kinds = [e.kind for e in state.events(kind="gateway.")]
    assert "gateway.live_fault" in kinds
    assert "gateway.live_fault_lifted" in kinds
    assert "gateway.failover" not in kinds  # a drill's failovers do not page
    assert [d.id for d in state.drills()] == [journal["id"]]


def test_kill_9_of_the_drill_lifts_the_fault_within_the_lease(sims: Sims, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, sims)
    with serve(plan) as url, Load([url], clients=2) as load:
        proc = subprocess.Popen(
            drkit(
                "drill",
                "run",
                "provider-outage",
                "--plan",
                str(plan),
                "--live",
                url,
                "--fraction",
                "0.3",
                "--duration",
                "60s",
                "--owner",
                "tester@ci",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: bool(admin_view(url)["live_faults"]), timeout=30, what="fault on")
            view = admin_view(url)
            primary = next(t for t in view["targets"] if t["name"] == "eu-primary")
            assert primary["live_fault"]["owner"] == "tester@ci"
            assert primary["live_fault"]["drill"].startswith("provider-outage-")
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            killed = time.time()
            proc.wait(timeout=10)
            wait_for(lambda: not admin_view(url)["live_faults"], timeout=10, what="lift")
            fault = lifted_fault(url)
            gone = time.time()
            wait_for(lambda: len(load.since(gone)) >= 5, what="requests after the lift")
        finally:
            if proc.poll() is None:
                proc.kill()
    # the gateway's own record: the lease (3s) was last renewed before the kill, and the
    # fault ended when it ran out (the timer ticks every 0.1s)
    assert fault["why"] == "lease"
    assert fault["lease_until"] <= killed + 3.0 + 1.0  # a renewal in flight may land late
    assert fault["lifted_at"] - fault["lease_until"] < 2.0
    assert all(not a.reasons and a.target == "eu-primary" for a in load.since(gone))


def test_a_stop_condition_lifts_the_fault_at_once(sims: Sims, tmp_path: Path) -> None:
    # any client-visible error stops the drill; the secondary fails too, so the faulted
    # requests have nowhere to go
    plan = write_plan(tmp_path, sims, max_error_rate=0.0)
    with serve(plan) as url, Load([url], clients=3) as load:
        wait_for(lambda: len(load.answers) >= 10, what="steady load")
        sims.secondary.set_faults({"kind": "error", "status": 503})
        done = run_drill(plan, url, "--fraction", "0.5", "--duration", "60s")
        fault = lifted_fault(url)
        assert not admin_view(url)["live_faults"]
        gone = time.time()
        wait_for(lambda: len(load.since(gone)) >= 5, what="requests after the lift")
    assert done.returncode == 1, done.stdout + done.stderr
    journal = json.loads(done.stdout)
    assert journal["verdict"] == "fail"
    assert any("stop condition tripped" in r for r in journal["reasons"]), journal["reasons"]
    assert journal["metrics"]["client_visible_errors"] >= 1
    assert fault["why"].startswith("stop_condition: 1 client-visible errors")
    assert fault["lifted_at"] - fault["started_at"] < 30  # not the 60s duration
    # after the lift nothing is faulted (the failing secondary may show as ejected)
    after = load.since(gone)
    assert all(a.ok and a.target == "eu-primary" and "live_drill" not in a.reasons for a in after)


def test_drill_abort_lifts_the_fault_and_the_drill_fails_aborted(
    sims: Sims, tmp_path: Path
) -> None:
    from drkit.cli.main import main

    plan = write_plan(tmp_path, sims)
    with serve(plan) as url, Load([url], clients=2) as load:
        proc = subprocess.Popen(
            drkit(
                "drill",
                "run",
                "provider-outage",
                "--plan",
                str(plan),
                "--live",
                url,
                "--fraction",
                "0.3",
                "--duration",
                "60s",
                "--json",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            wait_for(lambda: bool(admin_view(url)["live_faults"]), timeout=30, what="fault on")
            drill_id = admin_view(url)["live_faults"][0]["drill"]
            # the gateway's URL comes from drkit's state (the drill recorded it)
            assert main(["drill", "abort", drill_id, "--plan", str(plan)]) == 0
            assert not admin_view(url)["live_faults"]
            out, _ = proc.communicate(timeout=30)
            # an id the gateway does not know: exit 2
            assert main(["drill", "abort", "nope", "--plan", str(plan), "--live", url]) == 2
        finally:
            if proc.poll() is None:
                proc.kill()
        gone = time.time()
        wait_for(lambda: len(load.since(gone)) >= 3, what="requests after the abort")
    assert proc.returncode == 1
    journal = json.loads(out)
    assert journal["id"] == drill_id
    assert any("aborted" in r for r in journal["reasons"])
    assert journal["metrics"]["requests"] > 0
    assert all(not a.reasons for a in load.since(gone))
    # the status page shows the fault's window as maintenance
    from drkit.status.page import maintenance_windows

    windows = [w for w in maintenance_windows(StateStore(plan.parent / ".drkit" / "state.db"))]
    live = [w for w in windows if w[2] == f"live drill {drill_id}"]
    assert len(live) == 1
    assert live[0][1] - live[0][0] < 30  # ends at the abort, not at the planned 60s


def test_gameday_live_reports_the_figures_of_the_real_traffic(
    sims: Sims, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.cli.main import main

    plan = write_plan(tmp_path, sims)
    report = tmp_path / "gameday.html"
    with serve(plan) as url, Load([url], clients=2) as load:
        wait_for(lambda: len(load.answers) >= 10, what="steady load")
        code = main(
            [
                "gameday",
                "--plan",
                str(plan),
                "--scenario",
                "provider-outage",
                "--live",
                url,
                "--fraction",
                "0.2",
                "--duration",
                "2s",
                "--report",
                str(report),
                "--json",
            ]
        )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    row = out["scorecard"][0]
    assert row["metrics"]["live"] == 1
    assert row["metrics"]["requests"] > 0
    html = report.read_text()
    assert "share: <b>" in html
    assert "client visible errors: <b>0</b>" in html
