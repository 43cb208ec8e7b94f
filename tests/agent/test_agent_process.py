"""The agent as a real process: a bounded real-time run of second-scale schedules (the
right jobs, the right number of times, never overlapping), /metrics scraped and parsed
with the Prometheus text parser, /healthz, and SIGTERM in the middle of a backup."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.agent.conftest import write_plan

from drkit.cli.main import main


def _start(plan: Path, *args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "drkit", "agent", "run", "--plan", str(plan), "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _address(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None, "the agent exited before listening"
            continue
        if "/metrics and /healthz on " in line:
            return line.rsplit(" ", 1)[-1].strip()
    raise AssertionError("the agent never said where it listens")


def _metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _runs(report: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return sorted((r for r in report["runs"] if r["job"] == job), key=lambda r: r["started"])


@pytest.mark.usefixtures("env")
def test_bounded_real_time_run_and_metrics(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    proc, lines = _start(plan, "--max-runtime", "7s", "--listen", "127.0.0.1:0")
    base = _address(proc, lines)
    key = ("drkit_agent_job_runs_total", (("job", "backup:train"), ("result", "ok")))
    deadline = time.monotonic() + 30
    metrics: dict[Any, float] = {}
    while time.monotonic() < deadline:
        metrics = _metrics(base)
        if metrics.get(key, 0) >= 2:
            break
        time.sleep(0.2)
    assert metrics[key] >= 2
    last_ok = metrics[
        ("drkit_agent_job_last_success_timestamp_seconds", (("job", "backup:train"),))
    ]
    assert time.time() - 30 < last_ok <= time.time()
    assert metrics[("drkit_rpo_target_seconds", (("component", "train"),))] == 10.0
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.json()["jobs"]["backup:train"]["last_status"] == "ok"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["stopped_by"] == "max-runtime"
    assert report["failed"] == 0, report
    for job, every in (("backup:train", 2.0), ("copy:replica", 3.0), ("restore-test:train", 4.0)):
        runs = _runs(report, job)
        assert runs, job
        for a, b in itertools.pairwise(runs):
            assert b["started"] >= a["ended"]  # never overlapping itself
            assert b["started"] - a["started"] >= every - 0.01  # never before its slot
    # 7 s at 2 s: slots at 0, 2, 4, 6 (each run starts at its slot or as soon as free)
    assert 2 <= len(_runs(report, "backup:train")) <= 4
    assert len(_runs(report, "backup:golden")) == 1  # hourly: once
    assert len(_runs(report, "retention")) == 1  # daily: once
    # the scrape reads what the state says: every run is in drkit's state
    assert main(["agent", "status", "--plan", str(plan), "--json"]) == 0


@pytest.mark.usefixtures("env")
def test_sigterm_mid_backup_exits_0_and_the_repository_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    with open(tmp_path / "train" / "big.sparse", "wb") as f:  # zeros: seconds of chunking
        f.truncate(256 << 20)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    proc, lines = _start(plan, "--listen", "127.0.0.1:0")
    _address(proc, lines)
    locks = tmp_path / "primary" / "locks"
    deadline = time.monotonic() + 30
    while not any(locks.glob("*")) and time.monotonic() < deadline:
        assert proc.poll() is None
        time.sleep(0.02)
    assert any(locks.glob("*")), "no backup started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["stopped_by"] == "SIGTERM"
    assert report["abandoned"] == []
    jobs = {r["job"] for r in report["runs"]}
    assert "copy:replica" not in jobs  # nothing new started after the signal
    assert all(r["status"] == "ok" for r in report["runs"]), report
    assert list(locks.glob("*")) == []
    capsys.readouterr()
    assert main(["check", "--plan", str(plan)]) == 0
    assert "no errors" in capsys.readouterr().out
