"""Plan repository names work wherever a repository URL does, with their own passwords."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.cli.main import main


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("DRKIT_REPO", "DRKIT_PASSWORD_FILE", "DRKIT_FROM_PASSWORD", "DRKIT_TO_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DRKIT_PASSWORD", "primary pw")
    # a wrong DRKIT_TO_PASSWORD: the replica's own password_file must win over it
    monkeypatch.setenv("DRKIT_TO_PASSWORD", "not the replica's")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "replica.pw").write_text("replica pw\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    data: dict[str, Any] = {
        "version": 1,
        "name": "names",
        "tiers": {"standard": {"rto": "1h", "rpo": "1d"}},
        "repositories": {
            "primary": {
                "name": "primary",
                "url": f"file://{tmp_path / 'eu'}",
                "region": "eu-west",
            },
            "replicas": [
                {
                    "name": "us-replica",
                    "url": f"file://{tmp_path / 'us'}",
                    "region": "us-east",
                    "password_file": "replica.pw",
                }
            ],
        },
        "datasets": [{"name": "src", "path": "./src", "tier": "standard"}],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_replica_names_resolve_everywhere(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    assert main(["backup", "src"]) == 0
    copied = _json(capsys, ["copy", "--to", "us-replica", "--init"])
    assert len(copied["snapshots_copied"]) == 1
    assert (tmp_path / "us" / "config").exists()  # the plan's URL, not ./us-replica
    assert not (tmp_path / "us-replica").exists()

    # the replica by name: its password from its password_file (DRKIT_PASSWORD is the
    # primary's and would not open it)
    listed = _json(capsys, ["snapshots", "--repo", "us-replica"])
    assert [s["component"] for s in listed] == ["src"]
    assert _json(capsys, ["check", "--repo", "us-replica"])["ok"] is True
    restored = _json(
        capsys, ["restore", "latest", "-c", "src", "--repo", "us-replica", "--to", "out"]
    )
    assert restored["files"] == 1
    assert _json(capsys, ["repair", "--from", "us-replica"])["unrecoverable"] == []
    # by URL too: the plan's replica at that URL lends its password
    again = _json(capsys, ["copy", "--to", f"file://{tmp_path / 'us'}"])
    assert again["snapshots_present"] == 1
    # and the primary by name
    assert len(_json(capsys, ["snapshots", "--repo", "primary"])) == 1


def test_a_word_that_names_no_repository_is_a_path(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    assert main(["backup", "src"]) == 0
    capsys.readouterr()
    assert main(["copy", "--to", "elsewhere", "--init"]) == 0
    assert (tmp_path / "elsewhere" / "config").exists()


def _dr593(capsys: pytest.CaptureFixture[str], plan: Path) -> list[Any]:
    capsys.readouterr()  # the small plan fails other rules: exit 1 either way
    assert main(["plan", "check", "--plan", str(plan), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    return [v for v in report["violations"] if v["rule"] == "DR593"]


def test_plan_check_reports_a_replica_behind_its_copy_cadence(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(plan.read_text())
    data["datasets"][0]["replicate_to"] = ["us-replica"]
    data["repositories"]["replicas"][0]["copy_every"] = "1s"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["repo", "init"]) == 0
    assert main(["backup", "src"]) == 0
    import time

    time.sleep(1.2)  # the snapshot is now older than copy_every
    [behind] = _dr593(capsys, plan)  # the replica was never created
    assert behind["severity"] == "error"
    assert "replica 'us-replica' is behind: 1 snapshot(s)" in behind["message"]
    assert behind["field"] == "repositories.replicas[0].copy_every"
    assert main(["copy", "--to", "us-replica", "--init"]) == 0
    assert _dr593(capsys, plan) == []

    (tmp_path / "replica.pw").write_text("changed\n")  # the replica no longer opens
    [unchecked] = _dr593(capsys, plan)
    assert unchecked["severity"] == "warning"
    assert "could not be checked" in unchecked["message"]
