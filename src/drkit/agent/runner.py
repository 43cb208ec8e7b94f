"""``drkit agent run``: the loop around the scheduler, its stop and its endpoints.

The loop starts what is due, sleeps until the next job is due (or one ends), and stops on
SIGTERM/SIGINT, at ``max_runtime``, or — ``once`` — when every job that was due at start
has run (jobs waiting on another one's first success run in the same pass). On a stop no
new job starts; running ones get ``grace`` seconds to finish. Bad input (a plan that
does not load, a schedule below the minimum, a ``listen`` address that cannot be bound)
fails before any job starts.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.agent import http
from drkit.agent.history import History, RunRecord
from drkit.agent.jobs import Job, plan_jobs
from drkit.agent.leader import LEADER_KIND, Leadership, reconcile
from drkit.agent.scheduler import Policy, Scheduler
from drkit.agent.webhooks import Webhooks, check_urls
from drkit.errors import DrkitError, UsageError
from drkit.state.store import StateStore
from drkit.workspace.workspace import Workspace

log = logging.getLogger("drkit.agent")


@dataclass
class AgentOptions:
    once: bool = False
    max_runtime: float | None = None
    grace: float = 30.0
    policy: Policy = field(default_factory=Policy)
    #: ``HOST:PORT`` for /metrics and /healthz (None: no endpoint)
    listen: str | None = None
    #: how often the measured RPO is refreshed (endpoints, ``rpo.breach`` events)
    rpo_every: float = 30.0
    #: how late past its due time a job that has not started is ``job.overdue``
    overdue_slack: float = 60.0
    #: the leader lease's TTL (None: the plan's ``state.lease_ttl``)
    lease_ttl: float | None = None
    #: URLs the alarms are POSTed to, signed (:mod:`drkit.agent.webhooks`)
    webhooks: list[str] = field(default_factory=list)


@dataclass
class AgentReport:
    runs: list[RunRecord]
    stopped_by: str
    abandoned: list[str]
    listen: str | None = None
    endpoint_note: str | None = None
    #: ``once``: jobs due at start that could not run (waiting on a failed job)
    skipped: list[str] = field(default_factory=list)
    #: this agent in the leader lease, and the tokens of its terms as leader
    holder: str = ""
    terms: list[int] = field(default_factory=list)

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status != "ok"]

    def to_json(self) -> dict[str, Any]:
        return {
            "stopped_by": self.stopped_by,
            "runs": [r.to_json() for r in self.runs],
            "failed": len(self.failed),
            "abandoned": self.abandoned,
            "skipped": self.skipped,
            "listen": self.listen,
            "endpoint": self.endpoint_note,
            "holder": self.holder,
            "terms": self.terms,
        }


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host or "127.0.0.1", int(port)


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        stop(signal.Signals(signum).name)

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def prepare(plan_path: Path) -> tuple[Workspace, list[Job]]:
    """The workspace and the jobs of the plan; raises on bad input before anything runs."""
    ws = Workspace.load(plan_path)
    try:
        return ws, plan_jobs(ws.plan, plan_path)
    except BaseException:
        ws.close()
        raise


def preflight(ws: Workspace) -> None:
    """Refuse to start without a primary repository (every job would fail on it); a
    store that cannot be reached right now is not refused (its jobs retry and report)."""
    from drkit.connectors.objectstore.registry import open_store
    from drkit.errors import StorageError

    primary = ws.plan.repositories.primary
    try:
        missing = not open_store(primary.url).exists("config")
    except StorageError:
        return
    if missing:
        raise UsageError(
            f"no repository at {primary.url} (the plan's primary {primary.name!r})",
            hint="create it first: drkit repo init",
        )


def run_agent(
    plan_path: Path,
    options: AgentOptions,
    *,
    on_run: Callable[[RunRecord], None] | None = None,
    on_ready: Callable[[AgentReport], None] | None = None,
) -> AgentReport:
    """Run the plan's cadence until stopped (see the module docstring)."""
    listen = parse_listen(options.listen) if options.listen else None
    secret = check_urls(options.webhooks)
    ws, jobs = prepare(plan_path)
    try:
        preflight(ws)
        state = ws.state()  # an unreachable state URL fails here, before anything starts
    except BaseException:
        ws.close()
        raise
    runs: list[RunRecord] = []
    lock = threading.Lock()

    ttl = options.lease_ttl or (ws.plan.state.lease_ttl if ws.plan.state else 15.0)
    leader = Leadership(state, ttl)
    hooks = None
    if secret is not None:
        hooks = Webhooks(options.webhooks, secret, state, agent=leader.holder, plan=ws.plan.name)

    def record(run: RunRecord) -> None:
        with lock:
            runs.append(run)
        if hooks is not None and run.status == "failed":
            hooks.notify("job.failed", run.job, run.error or "failed", run.to_json())
        if on_run is not None:
            on_run(run)

    with ws, contextlib.ExitStack() as cleanup:
        if hooks is not None:
            cleanup.callback(hooks.close, min(options.grace, 10.0))
        report = AgentReport(runs, "", [], holder=leader.holder)
        server = None
        view = None
        if listen is not None:
            view = http.Snapshot(jobs, History(state))
            try:
                server = http.serve(view, *listen)
            except ModuleNotFoundError:
                report.endpoint_note = (
                    "no /metrics endpoint: prometheus-client is not installed "
                    "(pip install 'drkit[gateway]')"
                )
                log.warning(report.endpoint_note)
            except OSError as exc:
                raise UsageError(
                    f"--listen {options.listen}: cannot listen there: {exc.strerror}",
                    hint="pick a free port, or 127.0.0.1:0 for any",
                ) from exc
            else:
                host, port = server.server_address[:2]
                report.listen = f"{host!s}:{port}"
        stop_reason: list[str] = []
        stopping = threading.Event()
        term: list[Scheduler] = []  # the scheduler of this agent's current term as leader
        retired: list[Scheduler] = []  # earlier terms' schedulers, their jobs finishing

        def stop(why: str) -> None:
            if not stop_reason:
                stop_reason.append(why)
            stopping.set()
            for sched in term:
                sched.stop()

        def start_term() -> Scheduler:
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
            sched = Scheduler(jobs, history, options.policy, on_run=record)
            if view is not None:
                view.history, view.next_due = history, sched.next_due
            report.terms.append(fence.token)
            return sched

        deadline = None if options.max_runtime is None else time.monotonic() + options.max_runtime
        due_at_start: set[str] | None = None
        started: set[str] = set()
        last_rpo = float("-inf")
        next_tick = 0.0
        alarms = Alarms(state, options.overdue_slack, hooks.notify if hooks else None)
        if on_ready is not None:
            on_ready(report)
        try:
            with _stop_on_signals(stop):
                while not stopping.is_set():
                    if time.monotonic() >= next_tick:
                        leader.tick()
                        every = leader.renew_every if leader.is_leader else leader.poll_every
                        next_tick = time.monotonic() + every
                    if term and (not leader.is_leader or term[0].history.fence != leader.fence):
                        log.warning("agent %s: no longer the leader", leader.holder)
                        term[0].stop()
                        retired.append(term.pop())
                    if leader.is_leader and not term:
                        try:
                            term.append(start_term())
                        except DrkitError as exc:  # the state went away: try again
                            if options.once or not exc.retryable:
                                raise
                            log.warning("agent %s: cannot start its term: %s", leader.holder, exc)
                    if view is not None:
                        view.role = "leader" if term else "follower"
                    if not term and options.once:
                        raise UsageError(
                            f"another agent runs the cadence: {leader.note}",
                            hint="`drkit agent status` shows the leader; --once runs only"
                            " when no other agent leads",
                        )
                    if term and not options.once:
                        term[0].step()  # due jobs start before the (slower) RPO measurement
                        with _unless_unreachable("job.overdue"):
                            alarms.overdue(jobs, term[0].next_due, term[0].clock())
                    if not options.once and time.monotonic() - last_rpo >= options.rpo_every:
                        last_rpo = time.monotonic()
                        rows = _refresh_rpo(ws, view)
                        if rows is not None and term:
                            with _unless_unreachable("rpo.breach"):
                                alarms.rpo(rows)
                    if deadline is not None and time.monotonic() >= deadline:
                        stop("max-runtime")
                        break
                    if not term:
                        wait = next_tick - time.monotonic()
                        if deadline is not None:
                            wait = min(wait, deadline - time.monotonic())
                        stopping.wait(max(0.05, wait))
                        continue
                    sched = term[0]
                    if options.once:
                        if due_at_start is None:
                            due_at_start = {
                                j.id for j in jobs if sched.next_due(j) <= sched.clock()
                            }
                        # by what started, not what has recorded its run: a job that has
                        # just finished but not yet recorded must not start a second time
                        started |= set(sched.step(only=due_at_start - started))
                        if not sched.running:
                            stop("once")
                            break
                    wake = 1.0 if options.once else sched.next_wake()
                    if deadline is not None:
                        wake = min(wake, max(0.0, deadline - time.monotonic()))
                    if not options.once:
                        wake = min(wake, options.rpo_every)
                    wake = min(wake, max(0.0, next_tick - time.monotonic()))
                    sched.wait(max(0.05, min(wake, 60.0)))
                grace_end = time.monotonic() + options.grace
                for sched in [*retired, *term]:
                    sched.stop()
                abandoned: set[str] = set()
                for sched in [*retired, *term]:
                    abandoned |= set(sched.join(max(0.0, grace_end - time.monotonic())))
                report.abandoned = sorted(abandoned)
        finally:
            leader.release()
            if server is not None:
                server.shutdown()
                server.server_close()
        report.stopped_by = stop_reason[0] if stop_reason else "stopped"
        due = due_at_start or set()
        report.skipped = sorted(due - {r.job for r in runs}) if options.once else []
        return report


@contextlib.contextmanager
def _unless_unreachable(what: str) -> Iterator[None]:
    """An alarm the state cannot take right now is logged, not fatal to the agent."""
    try:
        yield
    except DrkitError as exc:
        if not exc.retryable:
            raise
        log.warning("%s not recorded: %s", what, exc)


def _refresh_rpo(ws: Workspace, view: Any) -> list[Any] | None:
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


def agent_status(plan_path: Path, now: float | None = None) -> list[dict[str, Any]]:
    """Every job of the plan: its cadence, last run (with result), last success, next run."""
    ws, jobs = prepare(plan_path)
    with ws:
        history = History(ws.state())
        sched = Scheduler(jobs, history, clock=(lambda: now) if now is not None else time.time)
        out = []
        for job in jobs:
            last, ok = history.last(job.id), history.last_success(job.id)
            out.append(
                {
                    "job": job.id,
                    "kind": job.kind,
                    "every": str(job.schedule),
                    "last": last.to_json() if last else None,
                    "last_success": ok.ended if ok else None,
                    "next_due": sched.next_due(job),
                    "overdue": last is not None and sched.next_due(job) < sched.clock(),
                }
            )
        return out


def leader_status(plan_path: Path) -> dict[str, Any] | None:
    """Who holds the agents' leader lease of this plan's state (``None``: no agent ever
    led): ``holder``, ``token``, ``expires_in_s`` (negative: expired, no leader now)."""
    from drkit.agent.leader import LEASE

    ws, _ = prepare(plan_path)
    with ws:
        lease, now = ws.state().lease(LEASE)
    if lease is None:
        return None
    return {
        "holder": lease.holder,
        "token": lease.token,
        "expires_in_s": round(lease.expires - now, 3),
    }
