"""The scheduler driven by an injected clock: due times, catch-up once, no overlap,
concurrency, ordering, retries of transient errors only, seeded jitter, stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.agent.history import History
from drkit.agent.jobs import Job
from drkit.agent.scheduler import Policy, Scheduler
from drkit.errors import CheckFailed, TransientStorageError
from drkit.plan.schedule import CronSchedule, IntervalSchedule
from drkit.state.store import StateStore

T0 = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _job(
    jid: str,
    every: float | str,
    run: Callable[[], str] | None = None,
    **kw: object,
) -> Job:
    sched = CronSchedule(cron=every) if isinstance(every, str) else IntervalSchedule(every=every)
    return Job(jid, "backup", sched, run or (lambda: "done"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(StateStore(tmp_path / "state.db"))


def _drive(sched: Scheduler, clock: Clock, until: float, step: float = 1.0) -> None:
    while clock.t < until:
        sched.step()
        assert sched.join(5) == []
        clock.t += step


def test_interval_jobs_run_once_per_slot_no_duplicate(history: History) -> None:
    clock = Clock()
    sched = Scheduler([_job("a", 10), _job("b", 25)], history, clock=clock)
    _drive(sched, clock, T0 + 100)
    runs_a = history.runs("a")
    # t=0,10,...,90: ten slots in 100 s, each once
    assert len(runs_a) == 10
    assert [r.started - T0 for r in runs_a] == [float(10 * i) for i in range(10)]
    assert len(history.runs("b")) == 4  # 0, 25, 50, 75


def test_catch_up_after_downtime_runs_once(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    clock = Clock()
    sched = Scheduler([_job("a", 10)], History(state), clock=clock)
    sched.step()
    sched.join(5)
    # the agent is down for 10 slots; a new agent (same state) catches up once
    clock.t += 105
    again = Scheduler([_job("a", 10)], History(state), clock=clock)
    assert again.step() == ["a"]
    again.join(5)
    assert again.step() == []  # the missed slots do not run one by one
    assert len(History(state).runs("a")) == 2
    assert again.next_due(again.jobs[0]) == clock.t + 10


def test_cron_schedule_next_run_and_catch_up(history: History) -> None:
    clock = Clock()  # 12:00:30
    sched = Scheduler([_job("c", "*/5 * * * *")], history, clock=clock)
    sched.step()
    sched.join(5)
    due = sched.next_due(sched.jobs[0])
    assert datetime.fromtimestamp(due, UTC).strftime("%H:%M:%S") == "12:05:00"
    clock.t += 3600  # an hour: twelve cron slots missed
    assert sched.step() == ["c"]
    sched.join(5)
    assert sched.step() == []
    assert len(history.runs("c")) == 2


def test_a_job_never_overlaps_itself_and_concurrency_is_bounded(history: History) -> None:
    gate = threading.Event()

    def blocked() -> str:
        gate.wait(5)
        return "ok"

    clock = Clock()
    jobs = [_job(name, 1, blocked) for name in ("a", "b", "c")]
    sched = Scheduler(jobs, history, Policy(concurrency=2), clock=clock)
    assert sched.step() == ["a", "b"]  # the limit
    clock.t += 5  # a and b are due again, but still running
    assert sched.step() == []
    gate.set()
    sched.join(5)
    gate.clear()
    assert sched.step() == ["c", "a"]  # the longest-waiting first: c is not starved
    gate.set()
    sched.join(5)
    assert sorted(r.job for r in history.runs()) == ["a", "a", "b", "c"]


def test_exclusive_runs_alone_and_after_waits_for_a_success(history: History) -> None:
    clock = Clock()
    fail = {"on": True}
    gate = threading.Event()

    def held() -> str:
        gate.wait(5)
        return "ok"

    def backup() -> str:
        held()
        if fail["on"]:
            raise CheckFailed("broken")
        return "ok"

    jobs = [
        _job("backup", 10, backup),
        _job("copy", 10, held, after=("backup",)),
        _job("prune", 10, held, exclusive=True),
    ]
    sched = Scheduler(jobs, history, Policy(concurrency=5), clock=clock)

    def step() -> list[str]:
        gate.clear()
        started = sched.step()
        gate.set()
        assert sched.join(5) == []
        return started

    assert step() == ["backup"]  # prune may not run beside it; copy waits for it
    assert sched.waiting_for(jobs[1]) == "backup has not succeeded yet"
    assert step() == ["prune"]
    fail["on"] = False
    clock.t += 10
    assert step() == ["backup"]  # prune is due too, but runs alone
    assert step() == ["copy"]  # backup succeeded; prune still waits for quiet
    assert step() == ["prune"]


def test_transient_failure_is_retried_permanent_is_not(history: History) -> None:
    calls = {"t": 0, "p": 0}

    def transient() -> str:
        calls["t"] += 1
        if calls["t"] < 3:
            raise TransientStorageError("503 slow down")
        return "ok at last"

    def permanent() -> str:
        calls["p"] += 1
        raise CheckFailed("restore test failed: checksum mismatch")

    clock = Clock()
    jobs = [_job("t", 60, transient), _job("p", 60, permanent)]
    sched = Scheduler(jobs, history, Policy(retries=3, backoff=0.01), clock=clock)
    sched.step()
    sched.join(5)
    t, p = history.last("t"), history.last("p")
    assert t is not None
    assert p is not None
    assert (t.status, t.attempts, t.summary) == ("ok", 3, "ok at last")
    assert (p.status, p.attempts) == ("failed", 1)
    assert p.error == "restore test failed: checksum mismatch"
    assert calls == {"t": 3, "p": 1}


def test_transient_failure_gives_up_after_the_retries(history: History) -> None:
    def always() -> str:
        raise TransientStorageError("timeout")

    sched = Scheduler([_job("t", 60, always)], history, Policy(retries=2, backoff=0.0))
    sched.step()
    sched.join(5)
    last = history.last("t")
    assert last is not None
    assert (last.status, last.attempts, last.transient) == ("failed", 3, True)


def test_a_crashing_job_is_recorded_not_fatal(history: History) -> None:
    def crash() -> str:
        raise ZeroDivisionError("bug")

    sched = Scheduler([_job("x", 60, crash), _job("y", 60)], history)
    sched.step()
    sched.join(5)
    x, y = history.last("x"), history.last("y")
    assert x is not None
    assert x.error == "ZeroDivisionError: bug"
    assert y is not None
    assert y.status == "ok"


def test_jitter_is_seeded_and_bounded(tmp_path: Path) -> None:
    def dues(seed: int) -> list[float]:
        state = StateStore(tmp_path / f"s{seed}-{len(list(tmp_path.iterdir()))}.db")
        clock = Clock()
        sched = Scheduler(
            [_job("a", 60), _job("b", 60)],
            History(state),
            Policy(jitter=30, seed=seed),
            clock=clock,
        )
        sched.step()
        sched.join(5)
        return [sched.next_due(j) - T0 - 60 for j in sched.jobs]

    first, again, other = dues(1), dues(1), dues(2)
    assert first == again
    assert first != other
    assert all(0 <= d <= 30 for d in first + other)
    assert first[0] != first[1]  # jobs do not all fire together


def test_stop_starts_nothing_and_cuts_retry_waits(history: History) -> None:
    def flaky() -> str:
        raise TransientStorageError("down")

    sched = Scheduler([_job("f", 60, flaky)], history, Policy(retries=5, backoff=30))
    sched.step()
    sched.stop()
    assert sched.join(5) == []  # the 30 s backoff did not hold the stop
    last = history.last("f")
    assert last is not None
    assert last.status == "failed"
    assert last.attempts < 6
    assert sched.step() == []


def test_clock_jumps_neither_stall_nor_repeat_jobs(history: History) -> None:
    """The wall clock jumping back an hour (NTP step, a VM restored) delays a 10 s job by
    at most one period, not by the hour; jumping forward runs it once (catch-up once)."""
    clock = Clock()
    sched = Scheduler([_job("a", 10)], history, clock=clock)
    _drive(sched, clock, T0 + 25)  # runs at 0, 10, 20
    assert len(history.runs("a")) == 3
    clock.t -= 3600  # back an hour: the last run "started" in the future
    assert sched.step() == []
    assert sched.next_due(sched.jobs[0]) == clock.t + 10
    _drive(sched, clock, clock.t + 21)
    assert len(history.runs("a")) == 5  # one period after the jump, then every 10 s
    clock.t += 7200  # forward two hours: due at once, and once only
    assert sched.step() == ["a"]
    assert sched.join(5) == []
    assert sched.step() == []
    assert len(history.runs("a")) == 6
