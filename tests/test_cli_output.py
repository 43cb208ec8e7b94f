"""Output for pipes and CI: no hard wrap when stdout is not a terminal, JSON with one
representation per kind (RFC 3339 times, integers as integers) and a schema_version,
and errors as JSON on stdout under --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.cli.common import SCHEMA_VERSION, dump_json, json_ready, rfc3339
from drkit.cli.main import main

SRC = Path(__file__).resolve().parents[1] / "src"


def _drkit_piped(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run(
        [sys.executable, "-m", "drkit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_piped_output_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 4) / "project"
    assert main(["init", "--local", str(deep)]) == 0
    proc = _drkit_piped(["drill", "list", "--plan", str(deep / "drkit.yaml")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(t for t in proc.stdout.splitlines() if "provider-outage" in t)
    assert "the gateway must serve from the next target" in line  # one line, not folded
    assert max(len(t) for t in proc.stdout.splitlines()) > 80


def test_json_error_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "show", "--plan", str(tmp_path / "nope.yaml"), "--json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["error"]["type"] == "PlanError"
    assert doc["error"]["exit_code"] == 2
    assert "no such plan file" in doc["error"]["message"]
    assert doc["error"]["hint"].startswith("run `drkit init`")
    assert "Try: " in captured.err  # people reading the log still see it


def test_a_failed_check_keeps_stdout_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--local", str(tmp_path)]) == 0
    plan = tmp_path / "drkit.yaml"
    plan.write_text(plan.read_text().replace("schedule: 30m", "schedule: 12h"))
    capsys.readouterr()
    assert main(["plan", "check", "--plan", str(plan), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)  # the check's result, not an error after it
    assert doc["ok"] is False
    assert doc["schema_version"] == SCHEMA_VERSION


def test_json_has_one_representation_per_kind() -> None:
    when = datetime(2026, 12, 1, 23, 50, tzinfo=UTC)
    doc = json_ready({"at": when, "bytes": 8920.0, "ratio": 0.5, "path": Path("/x"), "t": (1,)})
    assert doc == {
        "at": "2026-12-01T23:50:00Z",
        "bytes": 8920,
        "ratio": 0.5,
        "path": "/x",
        "t": [1],
    }
    assert isinstance(doc["bytes"], int)
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"
    assert json.loads(dump_json({"a": 1}))["schema_version"] == SCHEMA_VERSION
    assert json.loads(dump_json([1, 2])) == [1, 2]  # lists stay lists


def test_version_json_has_schema_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema_version"] == SCHEMA_VERSION


def test_a_snapshot_has_one_shape_in_backup_and_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    assert main(["init", "--local", str(tmp_path)]) == 0
    plan = str(tmp_path / "drkit.yaml")
    assert main(["repo", "init", "--plan", plan]) == 0
    capsys.readouterr()
    assert main(["backup", "train", "--plan", plan, "--json"]) == 0
    (made,) = json.loads(capsys.readouterr().out)
    assert main(["snapshots", "--plan", plan, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    # the snapshot's own fields are the same; each command adds what it knows
    assert {k: v for k, v in made.items() if k not in ("status", "snapshot")} == {
        k: v for k, v in listed.items() if k != "verified"
    }
    assert made["time"].endswith("Z")
    assert isinstance(made["summary"]["bytes"], int)
