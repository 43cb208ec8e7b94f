"""/healthz and /metrics in-process, the agent without prometheus-client, and the
`drkit init --local` plan run once end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.agent.conftest import write_plan

from drkit.agent import http
from drkit.agent.history import History, RunRecord
from drkit.agent.jobs import Job
from drkit.agent.rpo import MeasuredRpo
from drkit.agent.runner import AgentOptions, run_agent
from drkit.cli.main import main
from drkit.plan.schedule import IntervalSchedule
from drkit.state.store import StateStore


def test_healthz_fails_on_a_failed_job_or_an_exceeded_rpo(tmp_path: Path) -> None:
    history = History(StateStore(tmp_path / "state.db"))
    jobs = [Job(j, "backup", IntervalSchedule(every=60), lambda: "") for j in ("a", "b")]
    history.record(RunRecord("a", 100.0, 101.5, "ok", summary="1 snapshot", bytes=4096))
    view = http.Snapshot(jobs, history)
    view.rpo = [MeasuredRpo("kb", "primary", "eu", 600.0, 300.0, 120.0, 400.0)]
    server = http.serve(view, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        ok = httpx.get(f"{base}/healthz", timeout=5)
        assert ok.status_code == 200
        assert ok.json()["jobs"]["a"]["last_success"] == 101.5
        families = {
            f.name: f for f in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
        }
        [dur] = families["drkit_agent_job_last_duration_seconds"].samples
        assert (dur.labels, dur.value) == ({"job": "a"}, 1.5)
        [stored] = families["drkit_agent_job_last_bytes"].samples
        assert (stored.labels, stored.value) == ({"job": "a"}, 4096.0)
        [total] = families["drkit_agent_job_bytes"].samples
        assert (total.name, total.value) == ("drkit_agent_job_bytes_total", 4096.0)
        [rpo] = families["drkit_rpo_measured_seconds"].samples
        assert rpo.labels == {"component": "kb", "repository": "primary", "region": "eu"}
        assert rpo.value == 120.0
        [exceeded] = families["drkit_rpo_exceeded"].samples
        assert exceeded.value == 0.0

        history.record(RunRecord("b", 200.0, 201.0, "failed", error="disk full"))
        view.rpo = [MeasuredRpo("kb", "primary", "eu", 600.0, 300.0, None, None)]
        bad = httpx.get(f"{base}/healthz", timeout=5)
        assert bad.status_code == 503
        assert bad.json()["failing_jobs"] == ["b"]
        assert bad.json()["rpo_exceeded"] == ["kb@primary"]
        runs = {
            tuple(sorted(s.labels.items())): s.value
            for s in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
            if s.name == "drkit_agent_job_runs"
            for s in s.samples
        }
        assert runs[(("job", "b"), ("result", "failed"))] == 1.0
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("env")
def test_without_prometheus_client_the_agent_runs_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    report = run_agent(plan, AgentOptions(once=True, listen="127.0.0.1:0"))
    assert report.listen is None
    assert report.endpoint_note is not None
    assert "prometheus-client is not installed" in report.endpoint_note
    assert not report.failed
    assert report.runs


@pytest.mark.usefixtures("env")
def test_the_local_starter_plan_runs_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--local", str(tmp_path / "p")]) == 0
    plan = str(tmp_path / "p" / "drkit.yaml")
    assert main(["repo", "init", "--plan", plan]) == 0
    assert main(["agent", "run", "--once", "--plan", plan]) == 0
    assert main(["rpo", "--plan", plan]) == 0
    out = capsys.readouterr().out
    assert "7 run(s), 0 failed" in out  # + state-backup
