"""Three real agent processes sharing drkit's state in a real PostgreSQL: one leads, the
leader is killed with SIGKILL in the middle of a job, another takes over after the lease
expires, and no job is lost (every claim has a result; the interrupted one is rerun) and
none is duplicated (one leader's claims at a time, never two runs in one slot)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.agent.conftest import write_plan
from tests.connectors.vectorstore.engines import Postgres
from tests.tcp_proxy import TcpProxy

from drkit.agent.history import CLAIM_KIND, EVENT_KIND
from drkit.agent.leader import LEADER_KIND, LEASE
from drkit.cli.main import main
from drkit.state.store import StateStore

TTL = 3.0


def _agent(plan: Path, log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = ["agent", "run", "--plan", str(plan), "--json", "--listen", "127.0.0.1:0"]
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "drkit", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def _wait(what: str, until: float, check: object) -> None:
    while time.monotonic() < until:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _leader_pid(state: StateStore) -> int | None:
    lease, now = state.lease(LEASE)
    if lease is None or lease.expires <= now:
        return None
    return int(lease.holder.split(":")[1])


def _in_flight(state: StateStore) -> set[tuple[str, float]]:
    done = {(e.component, e.data["started"]) for e in state.events(kind=EVENT_KIND)}
    return {(e.component, e.data["started"]) for e in state.events(kind=CLAIM_KIND)} - done


@pytest.mark.usefixtures("env")
def test_kill_9_of_the_leader_costs_no_job_and_no_duplicate(
    tmp_path: Path, pg_state_url: str
) -> None:
    plan = write_plan(tmp_path, state={"url": pg_state_url, "lease_ttl": f"{TTL}s"})
    with open(tmp_path / "train" / "big.sparse", "wb") as f:  # zeros: every backup takes a while
        f.truncate(24 << 20)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    state = StateStore(pg_state_url)
    agents = {}
    try:
        for i in range(3):
            proc = _agent(plan, tmp_path / f"agent{i}.log")
            agents[proc.pid] = proc
        deadline = time.monotonic() + 90

        def leader_ran_twice() -> bool:
            return len([e for e in state.events(kind=EVENT_KIND)]) >= 2

        _wait("a leader's first runs", deadline, leader_ran_twice)
        _wait("a job in flight", deadline, lambda: bool(_in_flight(state)))
        pid = _leader_pid(state)
        assert pid in agents
        first = state.events(kind=LEADER_KIND)[-1]
        killed_at = time.time()
        agents[pid].send_signal(signal.SIGKILL)
        in_flight = _in_flight(state)
        killed = agents.pop(pid)
        killed.communicate(timeout=10)  # reaped, its pipe closed
        assert killed.returncode == -signal.SIGKILL

        def new_leader() -> bool:
            leaders = state.events(kind=LEADER_KIND)
            return leaders[-1].data["token"] > first.data["token"]

        _wait("a new leader", deadline, new_leader)
        second = state.events(kind=LEADER_KIND)[-1]
        takeover_s = second.at - killed_at
        print(f"takeover after kill -9: {takeover_s:.2f}s (TTL {TTL}s), in flight: {in_flight}")
        assert second.data["token"] == first.data["token"] + 1
        assert int(second.data["holder"].split(":")[1]) in agents

        def ran_under_the_new_leader() -> bool:
            return len(
                [e for e in state.events(kind=CLAIM_KIND, since=second.at)]
            ) >= 3 and not _in_flight(state)

        _wait("runs under the new leader", deadline, ran_under_the_new_leader)
    finally:
        for proc in agents.values():
            proc.send_signal(signal.SIGTERM)
        for proc in agents.values():
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, (tmp_path / "agent0.log").read_text()[-2000:]
            assert json.loads(out)["stopped_by"] == "SIGTERM"

    runs = [e.data for e in state.events(kind=EVENT_KIND)]
    claims = [e.data for e in state.events(kind=CLAIM_KIND)]
    state.close()
    _no_job_lost_none_twice(runs, claims)
    interrupted = [r for r in runs if r["status"] == "interrupted"]
    assert {(r["job"], r["started"]) for r in interrupted} == in_flight
    assert len({c["token"] for c in claims}) == 2  # the killed leader's term and the new one


def _no_job_lost_none_twice(runs: list[dict[str, Any]], claims: list[dict[str, Any]]) -> None:
    # no job lost: every claim has its result, a killed leader's included ...
    assert {(c["job"], c["started"]) for c in claims} == {(r["job"], r["started"]) for r in runs}
    for r in runs:  # ... and an interrupted run is rerun by the next leader
        if r["status"] == "interrupted":
            assert any(o["job"] == r["job"] and o["started"] > r["started"] for o in runs)
    # one leader at a time: the claims' tokens never go back, one holder per token
    ordered = sorted(claims, key=lambda c: c["started"])
    tokens = [c["token"] for c in ordered]
    assert tokens == sorted(tokens)
    holders: dict[int, set[str]] = {}
    for c in claims:
        holders.setdefault(c["token"], set()).add(c["holder"])
    assert all(len(h) == 1 for h in holders.values()), holders
    # no duplicate: a job's finished runs never overlap and never share a slot
    every = {"backup:train": 2.0, "copy:replica": 3.0, "restore-test:train": 4.0}
    done = [r for r in runs if r["status"] != "interrupted"]
    for job, gap in every.items():
        mine = sorted((r for r in done if r["job"] == job), key=lambda r: r["started"])
        for a, b in itertools.pairwise(mine):
            assert b["started"] >= a["ended"], job
            assert b["started"] - a["started"] >= gap - 0.01, job
    for job in ("backup:golden", "retention"):  # hourly, daily: never twice
        assert len([r for r in done if r["job"] == job and r["status"] == "ok"]) <= 1


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("outage", ["postgres restarted", "network cut"])
def test_two_agents_ride_out_an_outage_of_their_state(
    tmp_path: Path, pg_state_url: str, pg_server: Postgres, outage: str
) -> None:
    proxy = TcpProxy(pg_server.port)
    url = pg_state_url.replace(f":{pg_server.port}/", f":{proxy.port}/")
    plan = write_plan(tmp_path, state={"url": url, "lease_ttl": f"{TTL}s"})
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    state = StateStore(pg_state_url)
    agents = [_agent(plan, tmp_path / f"agent{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        _wait("the first runs", deadline, lambda: len(state.events(kind=EVENT_KIND)) >= 2)
        # both agents up: they listen once their state opened (an agent that cannot reach
        # its state at start exits 2, by design)
        logs = [tmp_path / f"agent{i}.log" for i in range(2)]
        _wait(
            "both agents up",
            deadline,
            lambda: all("/healthz on http" in f.read_text() for f in logs),
        )
        state.close()
        # longer than the lease: whoever leads loses it
        (pg_server.stop if outage == "postgres restarted" else proxy.cut)()
        time.sleep(TTL + 2)
        assert [a.poll() for a in agents] == [None, None]  # the agents wait, they do not die
        (pg_server.start if outage == "postgres restarted" else proxy.restore)()
        state = StateStore(pg_state_url)
        restarted = time.time()

        def runs_again() -> bool:
            return len(state.events(kind=CLAIM_KIND, since=restarted)) >= 3 and not _in_flight(
                state
            )

        _wait("runs after the restart", deadline, runs_again)
    finally:
        try:
            for proc in agents:
                proc.send_signal(signal.SIGTERM)
            for i, proc in enumerate(agents):
                out, _ = proc.communicate(timeout=60)
                assert proc.returncode == 0, (tmp_path / f"agent{i}.log").read_text()[-2000:]
                assert json.loads(out)["stopped_by"] == "SIGTERM"
        finally:
            proxy.cut()  # its sockets closed
    runs = [e.data for e in state.events(kind=EVENT_KIND)]
    claims = [e.data for e in state.events(kind=CLAIM_KIND)]
    leaders = state.events(kind=LEADER_KIND)
    state.close()
    _no_job_lost_none_twice(runs, claims)
    assert len(leaders) >= 2, (
        outage,
        leaders,
        sorted({(c["token"], c["holder"]) for c in claims}),
    )  # a new term after the outage (the lease had expired)
    log = "".join((tmp_path / f"agent{i}.log").read_text() for i in range(2))
    assert "Traceback" not in log
