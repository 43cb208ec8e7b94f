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
from drkit.agent.leader import Leadership
from drkit.agent.loop import AgentLoop, Alarms
from drkit.agent.scheduler import Policy, Scheduler
from drkit.agent.webhooks import Webhooks, check_urls
from drkit.errors import UsageError
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
        view = None if listen is None else http.Snapshot(jobs, History(state))
        if view is not None and listen is not None:
            _serve(view, listen, options, report, cleanup)
        alarms = Alarms(state, options.overdue_slack, hooks.notify if hooks else None)
        loop = AgentLoop(
            ws, jobs, state, leader, options, report, record=record, alarms=alarms, view=view
        )
        if on_ready is not None:
            on_ready(report)
        try:
            with _stop_on_signals(loop.stop):
                loop.run()
        finally:
            leader.release()
        report.stopped_by = loop.stop_reason[0] if loop.stop_reason else "stopped"
        due = loop.due_at_start or set()
        report.skipped = sorted(due - {r.job for r in runs}) if options.once else []
        return report


def _serve(
    view: http.Snapshot,
    listen: tuple[str, int],
    options: AgentOptions,
    report: AgentReport,
    cleanup: contextlib.ExitStack,
) -> None:
    """/metrics and /healthz on ``listen`` until ``cleanup`` closes (a missing
    prometheus-client is a note in the report, not a failure)."""
    try:
        server = http.serve(view, *listen)
    except ModuleNotFoundError:
        report.endpoint_note = (
            "no /metrics endpoint: prometheus-client is not installed "
            "(pip install 'drkit[gateway]')"
        )
        log.warning(report.endpoint_note)
        return
    except OSError as exc:
        raise UsageError(
            f"--listen {options.listen}: cannot listen there: {exc.strerror}",
            hint="pick a free port, or 127.0.0.1:0 for any",
        ) from exc
    cleanup.callback(server.server_close)
    cleanup.callback(server.shutdown)
    host, port = server.server_address[:2]
    report.listen = f"{host!s}:{port}"


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
