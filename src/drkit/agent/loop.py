"""One agent process's main loop (:func:`drkit.agent.runner.run_agent` sets it up):
leadership and its terms, the cadence, the alarms, and the stop.

Each pass: renew or seek the leader lease; on a lost lease retire the term's scheduler
(its running jobs finish, nothing new starts); on a won one start a term; start what is
due, raise ``job.overdue``/``rpo.breach`` alarms; sleep until the next job is due, a job
ends, the lease needs renewing or the RPO refresh is due.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from drkit.agent import http
from drkit.agent.history import History, RunRecord
from drkit.agent.jobs import Job
from drkit.agent.leader import LEADER_KIND, Leadership, reconcile
from drkit.agent.scheduler import Scheduler
from drkit.errors import DrkitError, UsageError
from drkit.state.store import StateStore
from drkit.workspace.workspace import Workspace

if TYPE_CHECKING:
    from drkit.agent.runner import AgentOptions, AgentReport

log = logging.getLogger("drkit.agent")


class AgentLoop:
    def __init__(
        self,
        ws: Workspace,
        jobs: list[Job],
        state: StateStore,
        leader: Leadership,
        options: AgentOptions,
        report: AgentReport,
        *,
        record: Callable[[RunRecord], None],
        alarms: Alarms,
        view: http.Snapshot | None = None,
    ) -> None:
        self.ws, self.jobs, self.state, self.leader = ws, jobs, state, leader
        self.options, self.report, self.record = options, report, record
        self.alarms, self.view = alarms, view
        self.stop_reason: list[str] = []
        self.stopping = threading.Event()
        self.term: list[Scheduler] = []  # the scheduler of this agent's current term
        self.retired: list[Scheduler] = []  # earlier terms' schedulers, jobs finishing
        runtime = options.max_runtime
        self.deadline = None if runtime is None else time.monotonic() + runtime
        self.due_at_start: set[str] | None = None
        self.started: set[str] = set()
        self.last_rpo = float("-inf")
        self.next_tick = 0.0

    def stop(self, why: str) -> None:
        if not self.stop_reason:
            self.stop_reason.append(why)
        self.stopping.set()
        for sched in self.term:
            sched.stop()

    def run(self) -> None:
        """Pass after pass until stopped; then the schedulers stop and get their grace."""
        while not self.stopping.is_set():
            self._lead()
            self._watch()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.stop("max-runtime")
                break
            if not self.term:
                wait = self.next_tick - time.monotonic()
                if self.deadline is not None:
                    wait = min(wait, self.deadline - time.monotonic())
                self.stopping.wait(max(0.05, wait))
                continue
            sched = self.term[0]
            if self.options.once and self._once_done(sched):
                break
            sched.wait(max(0.05, min(self._wake(sched), 60.0)))
        self._finish()

    def _lead(self) -> None:
        """Renew or seek the lease; retire a lost term, start a won one."""
        leader = self.leader
        if time.monotonic() >= self.next_tick:
            leader.tick()
            every = leader.renew_every if leader.is_leader else leader.poll_every
            self.next_tick = time.monotonic() + every
        term = self.term
        if term and (not leader.is_leader or term[0].history.fence != leader.fence):
            log.warning("agent %s: no longer the leader", leader.holder)
            term[0].stop()
            self.retired.append(term.pop())
        if leader.is_leader and not term:
            try:
                term.append(self._start_term())
            except DrkitError as exc:  # the state went away: try again
                if self.options.once or not exc.retryable:
                    raise
                log.warning("agent %s: cannot start its term: %s", leader.holder, exc)
        if self.view is not None:
            self.view.role = "leader" if term else "follower"
        if not term and self.options.once:
            raise UsageError(
                f"another agent runs the cadence: {leader.note}",
                hint="`drkit agent status` shows the leader; --once runs only"
                " when no other agent leads",
            )

    def _start_term(self) -> Scheduler:
        leader, state = self.leader, self.state
        fence = leader.fence
        state.record_event(
            LEADER_KIND,
            leader.holder,
            f"{leader.holder} leads (token {fence.token})",
            {"holder": leader.holder, "token": fence.token},
            fence=fence,
        )
        for run in reconcile(state, fence, leader.holder):
            log.warning("%s: %s", run.job, run.error)
        history = History(state, fence=fence, holder=leader.holder)
        sched = Scheduler(self.jobs, history, self.options.policy, on_run=self.record)
        if self.view is not None:
            self.view.history, self.view.next_due = history, sched.next_due
        self.report.terms.append(fence.token)
        return sched

    def _watch(self) -> None:
        """Start due jobs (before the slower RPO measurement) and raise the alarms."""
        options, term = self.options, self.term
        if options.once:
            return
        if term:
            term[0].step()
            with _unless_unreachable("job.overdue"):
                self.alarms.overdue(self.jobs, term[0].next_due, term[0].clock())
        if time.monotonic() - self.last_rpo >= options.rpo_every:
            self.last_rpo = time.monotonic()
            rows = refresh_rpo(self.ws, self.view)
            if rows is not None and term:
                with _unless_unreachable("rpo.breach"):
                    self.alarms.rpo(rows)

    def _once_done(self, sched: Scheduler) -> bool:
        """``once``: start what was due at start; done when none of it is running."""
        if self.due_at_start is None:
            self.due_at_start = {j.id for j in self.jobs if sched.next_due(j) <= sched.clock()}
        # by what started, not what has recorded its run: a job that has just finished
        # but not yet recorded must not start a second time
        self.started |= set(sched.step(only=self.due_at_start - self.started))
        if not sched.running:
            self.stop("once")
            return True
        return False

    def _wake(self, sched: Scheduler) -> float:
        options = self.options
        wake = 1.0 if options.once else sched.next_wake()
        if self.deadline is not None:
            wake = min(wake, max(0.0, self.deadline - time.monotonic()))
        if not options.once:
            wake = min(wake, options.rpo_every)
        return min(wake, max(0.0, self.next_tick - time.monotonic()))

    def _finish(self) -> None:
        """No new job starts; running ones get the grace period."""
        grace_end = time.monotonic() + self.options.grace
        schedulers = [*self.retired, *self.term]
        for sched in schedulers:
            sched.stop()
        abandoned: set[str] = set()
        for sched in schedulers:
            abandoned |= set(sched.join(max(0.0, grace_end - time.monotonic())))
        self.report.abandoned = sorted(abandoned)


@contextlib.contextmanager
def _unless_unreachable(what: str) -> Iterator[None]:
    """An alarm the state cannot take right now is logged, not fatal to the agent."""
    try:
        yield
    except DrkitError as exc:
        if not exc.retryable:
            raise
        log.warning("%s not recorded: %s", what, exc)


def refresh_rpo(ws: Workspace, view: Any) -> list[Any] | None:
    from drkit.agent.rpo import measure_rpo

    try:
        rows = measure_rpo(ws)
    except Exception as exc:  # the endpoint says why, the agent goes on
        if view is not None:
            view.rpo_error = f"{type(exc).__name__}: {exc}"
        return None
    if view is not None:
        view.rpo = rows
        view.rpo_error = None
    return rows


class Alarms:
    """``rpo.breach`` and ``job.overdue`` events, each once per breach / missed slot
    (an RPO that stays exceeded is not re-reported every refresh)."""

    def __init__(
        self,
        state: StateStore,
        slack: float,
        notify: Callable[[str, str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.state = state
        self.slack = slack
        self.notify = notify
        self.breached: set[tuple[str, str]] = set()
        self.late: dict[str, float] = {}

    def rpo(self, rows: list[Any]) -> None:
        now = {(m.component, m.repository): m for m in rows if m.exceeded}
        for key in sorted(set(now) - self.breached):
            m = now[key]
            message = f"measured RPO of {m.component} in {m.repository} exceeds its target" + (
                f" ({m.error})" if m.error else ""
            )
            self.state.record_event("rpo.breach", m.component, message, m.to_json())
            if self.notify is not None:
                self.notify("rpo.breach", m.component, message, m.to_json())
        self.breached = set(now)

    def overdue(self, jobs: list[Job], next_due: Callable[[Job], float], clock: float) -> None:
        for job in jobs:
            due = next_due(job)
            if clock - due > self.slack and self.late.get(job.id) != due:
                self.late[job.id] = due
                message = f"{job.id} has not started {clock - due:.0f}s after it was due"
                data = {"job": job.id, "due": due, "late_s": round(clock - due, 3)}
                self.state.record_event("job.overdue", job.id, message, data)
                if self.notify is not None:
                    self.notify("job.overdue", job.id, message, data)
