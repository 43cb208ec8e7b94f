"""The annual regional exercise: ``region-outage --live`` drains a region of the running
gateway's real traffic; only such a run satisfies ``testing.regional_failover_every``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.live.conftest import Load, Sims, run_cli, serve, wait_for, write_plan

from drkit.state.store import StateStore
from drkit.workspace import Workspace


def test_live_region_outage_drains_the_region_and_measures_failback(
    sims: Sims, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, sims, max_fraction=1.0)
    with serve(plan) as url, Load([url], clients=3) as load:
        wait_for(lambda: len(load.answers) >= 10, what="steady load")
        started = time.time()
        done = run_cli(
            "drill",
            "run",
            "region-outage",
            "--plan",
            str(plan),
            "--live",
            url,
            "--region",
            "eu-west",
            "--duration",
            "2s",
            "--json",
        )
        ended = time.time()
    assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads(done.stdout)
    m = journal["metrics"]
    assert journal["scenario"] == "region-outage"
    assert m["live"] == 1
    assert m["share"] >= 0.95  # all but those in flight at the install left the region
    assert m["client_visible_errors"] == 0
    assert not load.errors
    fault = next(st["data"]["fault"] for st in journal["steps"] if st["phase"] == "fault")
    assert started < fault["started_at"] < fault["ends_at"] < ended
    # answers completed well inside the fault's window (not in flight at either end)
    during = [
        a for a in load.answers if fault["started_at"] + 0.3 <= a.at <= fault["ends_at"] - 0.1
    ]
    assert during
    assert all(a.target == "us-secondary" for a in during)
    assert m["failback_s"] < 5  # real traffic is back on eu-west after the lift
    with Workspace.load(plan) as ws:
        assert ws.last_success("regional_failover") is not None


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
        state.record_drill(
            {**rehearsal, "id": "r-4", "metrics": {"live": 1.0, "region_drained": 1.0}}
        )
        assert ws.last_success("regional_failover") is not None
