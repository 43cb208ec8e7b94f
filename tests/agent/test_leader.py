"""The leader lease in-process: one leader at a time, a leader that dies mid-job has its
claim recorded ``interrupted`` and rerun by the next one (at once, once), and a deposed
leader can neither start a job nor record its late result."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from drkit.agent.history import CLAIM_KIND, EVENT_KIND, History
from drkit.agent.jobs import Job
from drkit.agent.leader import Leadership, reconcile
from drkit.agent.scheduler import Scheduler
from drkit.plan.schedule import IntervalSchedule
from drkit.state.store import StateStore


def _job(run: object) -> Job:
    return Job("backup:kb", "backup", IntervalSchedule(every=3600), run)  # type: ignore[arg-type]


def test_only_one_agent_leads_and_a_follower_waits_for_expiry(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "s.db")
    a, b = Leadership(state, ttl=0.6, holder="a"), Leadership(state, ttl=0.6, holder="b")
    assert a.tick()
    assert not b.tick()
    assert "a leads (token 1)" in b.note
    assert a.tick()  # renewal keeps the term
    assert a.token == 1
    time.sleep(0.8)  # a stopped renewing (it died)
    assert not a.is_leader  # by its own clock, before anyone could take over
    assert b.tick()
    assert b.token == 2
    assert not a.tick()
    state.close()


def test_a_dead_leaders_job_is_rerun_once_and_its_late_result_rejected(
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "s.db")
    a = Leadership(state, ttl=0.4, holder="a")
    assert a.tick()
    release = threading.Event()
    ran: list[str] = []

    def slow() -> str:
        ran.append("a")
        release.wait(10)
        return "a's snapshot"

    sched_a = Scheduler(
        [_job(slow)], History(state, fence=a.fence, holder="a"), on_run=lambda r: None
    )
    assert sched_a.step() == ["backup:kb"]
    time.sleep(0.6)  # a hangs in its job and misses its renewals: the lease expires

    b = Leadership(state, ttl=30, holder="b")
    assert b.tick()
    (interrupted,) = reconcile(state, b.fence, "b")
    assert interrupted.status == "interrupted"
    assert "lost the lease (token 1)" in (interrupted.error or "")
    assert reconcile(state, b.fence, "b") == []  # recorded once

    history_b = History(state, fence=b.fence, holder="b")
    sched_b = Scheduler([_job(lambda: "b's snapshot")], history_b)
    assert sched_b.next_due(sched_b.jobs[0]) <= time.time()  # due again at once
    assert sched_b.step() == ["backup:kb"]
    assert sched_b.join(10) == []

    release.set()  # a's job ends now: its result is fenced off
    assert sched_a.join(10) == []
    assert ran == ["a"]
    runs = [(e.data["status"], e.message) for e in state.events(kind=EVENT_KIND)]
    assert runs == [("interrupted", interrupted.error), ("ok", "b's snapshot")]
    claims = [(e.data["holder"], e.data["token"]) for e in state.events(kind=CLAIM_KIND)]
    assert claims == [("a", 1), ("b", 2)]

    # nor can a start anything any more: its claim is rejected, the job does not run
    release.clear()
    sched_a.step()
    assert sched_a.join(10) == []
    assert ran == ["a"]
    assert [e.data["holder"] for e in state.events(kind=CLAIM_KIND)] == ["a", "b"]
    assert sched_b.step() == []  # b's run anchors the next slot an hour away
    state.close()


def test_wall_clock_jumps_do_not_move_the_lease(
    pg_state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a PostgreSQL state the lease runs on the database's clock and each agent's
    view of it on its monotonic clock: an agent's wall clock jumping an hour either way
    neither lets a follower in early nor deposes the leader."""
    real = time.time
    a_state, b_state = StateStore(pg_state_url), StateStore(pg_state_url)
    a = Leadership(a_state, ttl=1.5, holder="a")
    b = Leadership(b_state, ttl=1.5, holder="b")
    try:
        assert a.tick()
        monkeypatch.setattr(time, "time", lambda: real() + 3600)  # forward an hour
        assert not b.tick()  # the lease has not expired: the database says so
        assert a.tick()
        monkeypatch.setattr(time, "time", lambda: real() - 3600)  # back an hour
        assert a.tick()
        assert a.token == 1  # one term throughout
        assert a.is_leader
        assert not b.tick()
        time.sleep(1.7)  # a stops renewing: b leads after the TTL, not before
        assert not a.is_leader
        assert b.tick()
        assert b.token == 2
    finally:
        a_state.close()
        b_state.close()
