"""The agent's ``/metrics`` (Prometheus text format), ``/healthz`` and ``/livez``.

``/metrics`` needs ``prometheus-client`` (the ``gateway`` extra); without it the agent
runs without the endpoint and says so (:func:`serve` raises ``ModuleNotFoundError``,
which the runner reports). ``/healthz`` answers JSON: 200 while no job's last run
failed and no measured RPO exceeds its target, else 503 with what is wrong (a
readiness/alerting question). ``/livez`` answers 200 while the agent serves, leader or
follower (a liveness probe must not restart an agent because a backup failed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drkit.agent.history import History
from drkit.agent.jobs import Job
from drkit.agent.rpo import MeasuredRpo


@dataclass
class Snapshot:
    """What the endpoints show: the jobs, their history, the last RPO measurement."""

    jobs: list[Job]
    history: History
    rpo: list[MeasuredRpo] = field(default_factory=list)
    rpo_error: str | None = None
    next_due: Callable[[Job], float] | None = None
    #: ``leader`` (runs the jobs) or ``follower`` (waits for the lease)
    role: str = "follower"

    def health(self) -> dict[str, Any]:
        failing = [j.id for j in self.jobs if (r := self.history.last(j.id)) and r.status != "ok"]
        exceeded = [f"{m.component}@{m.repository}" for m in self.rpo if m.exceeded]
        jobs = {}
        for j in self.jobs:
            last, ok = self.history.last(j.id), self.history.last_success(j.id)
            jobs[j.id] = {
                "last_status": last.status if last else None,
                "last_success": ok.ended if ok else None,
                "next_due": self.next_due(j) if self.next_due else None,
            }
        return {
            "status": "ok" if not failing and not exceeded else "failing",
            "failing_jobs": failing,
            "rpo_exceeded": exceeded,
            "rpo_error": self.rpo_error,
            "role": self.role,
            "jobs": jobs,
        }


def _collector(view: Snapshot) -> Any:  # long: one block per Prometheus family, read top to bottom
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self) -> Iterator[Any]:
            last_ok = GaugeMetricFamily(
                "drkit_agent_job_last_success_timestamp_seconds",
                "When the job last succeeded (epoch seconds)",
                labels=["job"],
            )
            duration = GaugeMetricFamily(
                "drkit_agent_job_last_duration_seconds",
                "How long the job's last run took",
                labels=["job"],
            )
            runs = CounterMetricFamily(
                "drkit_agent_job_runs", "Runs of the job by result", labels=["job", "result"]
            )
            last_bytes = GaugeMetricFamily(
                "drkit_agent_job_last_bytes",
                "Bytes the job's last successful run stored or moved (backup: new stored "
                "bytes; copy: bytes sent to the replica)",
                labels=["job"],
            )
            bytes_total = CounterMetricFamily(
                "drkit_agent_job_bytes", "Bytes the job's runs stored or moved", labels=["job"]
            )
            for j in view.jobs:
                ok, last = view.history.last_success(j.id), view.history.last(j.id)
                if ok is not None and ok.bytes is not None:
                    last_bytes.add_metric([j.id], ok.bytes)
                    bytes_total.add_metric([j.id], view.history.bytes_total(j.id))
                if ok is not None:
                    last_ok.add_metric([j.id], ok.ended)
                if last is not None:
                    duration.add_metric([j.id], last.duration_s)
                for result in ("ok", "failed"):
                    runs.add_metric([j.id, result], view.history.count(j.id, result))
            measured = GaugeMetricFamily(
                "drkit_rpo_measured_seconds",
                "Age of the newest snapshot of the component in the region's repository",
                labels=["component", "repository", "region"],
            )
            verified = GaugeMetricFamily(
                "drkit_rpo_verified_seconds",
                "Age of the newest verified snapshot of the component in that repository",
                labels=["component", "repository", "region"],
            )
            target = GaugeMetricFamily(
                "drkit_rpo_target_seconds", "The component's RPO target", labels=["component"]
            )
            exceeded = GaugeMetricFamily(
                "drkit_rpo_exceeded",
                "1 when the measured RPO exceeds the target (or there is no snapshot)",
                labels=["component", "repository", "region"],
            )
            seen: set[str] = set()
            for m in view.rpo:
                labels = [m.component, m.repository, m.region]
                if m.newest_s is not None:
                    measured.add_metric(labels, m.newest_s)
                if m.verified_s is not None:
                    verified.add_metric(labels, m.verified_s)
                exceeded.add_metric(labels, 1.0 if m.exceeded else 0.0)
                if m.component not in seen:
                    seen.add(m.component)
                    target.add_metric([m.component], m.target_s)
            leader = GaugeMetricFamily(
                "drkit_agent_leader", "1 while this agent holds the leader lease and runs jobs"
            )
            leader.add_metric([], 1.0 if view.role == "leader" else 0.0)
            yield from (
                last_ok,
                duration,
                runs,
                last_bytes,
                bytes_total,
                measured,
                verified,
                target,
                exceeded,
                leader,
            )

    return Collector()


def serve(view: Snapshot, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` in a daemon thread (port 0:
    a free one; ``server.server_address`` says which)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_collector(view))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, ctype = generate_latest(registry), 200, "text/plain; version=0.0.4"
            elif self.path == "/livez":  # the process serves: a liveness probe's question
                body, status, ctype = (
                    json.dumps({"role": view.role}).encode(),
                    200,
                    "application/json",
                )
            elif self.path == "/healthz":
                health = view.health()
                body = json.dumps(health).encode()
                status = 200 if health["status"] == "ok" else 503
                ctype = "application/json"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no access log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="drkit-agent http", daemon=True).start()
    return server
