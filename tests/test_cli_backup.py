"""``drkit backup`` of several components: every one attempted, one line per result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.cli.main import main


def _plan(tmp_path: Path, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "name": "backup-test",
        "tiers": {"standard": {"rto": "1h", "rpo": "1d"}},
        "repositories": {
            "primary": {
                "name": "primary",
                "url": f"file://{tmp_path / 'repo'}",
                "region": "eu-west",
            }
        },
        "datasets": [
            {"name": "first", "path": "./first", "tier": "standard"},
            {"name": "missing", "path": "./no-such-dir", "tier": "standard"},
            {"name": "last", "path": "./last", "tier": "standard"},
        ],
        "eval_sets": [{"name": "empty", "path": "./empty"}],
        **extra,
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name in ("first", "last"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.txt").write_text(f"{name}\n")
    (tmp_path / "empty" / "only" / "directories").mkdir(parents=True)
    return path


@pytest.fixture
def env(cli_env: None) -> None:
    """tests/conftest.py's ``cli_env`` (the suite already clears DRKIT_REPO and the like)."""


@pytest.mark.usefixtures("env")
def test_backup_attempts_every_component_and_reports_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    # a missing path (bad input) and an empty tree (nothing protected): exit 1, not 0,
    # and the components after the failure were still backed up
    assert main(["backup", "--plan", str(plan)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("snapshot ")
    assert " of first:" in lines[0]
    assert " of last:" in lines[1]
    assert "1 files" in lines[0]
    assert lines[2] == f"empty: nothing to back up: {tmp_path / 'empty'} holds no file"
    assert len(lines) == 3  # failures go to stderr, after the results
    errors = captured.err.strip().splitlines()
    assert errors[0].startswith("FAILED missing: ")
    assert "no-such-dir does not exist" in errors[0]
    assert "datasets[1].path" in errors[0]  # names the plan field (and its line)
    assert "drkit.yaml:" in errors[0]
    assert errors[1].strip().startswith("Try: ")
    assert "2 of 4 backup(s) protected nothing" in captured.err

    assert main(["snapshots", "--plan", str(plan), "--json"]) == 0
    snaps = json.loads(capsys.readouterr().out)
    assert sorted(s["component"] for s in snaps) == ["first", "last"]

    assert main(["backup", "--all", "--plan", str(plan), "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert [(r["component"], r["status"]) for r in results] == [
        ("first", "ok"),
        ("last", "ok"),
        ("empty", "nothing"),
        ("missing", "failed"),
    ]
    assert results[0]["snapshot"]
    assert results[0]["summary"]["files"] == 1
    assert "hint" in results[3]


@pytest.mark.usefixtures("env")
def test_backup_of_bad_input_only_exits_2_and_of_good_input_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "missing", "--plan", str(plan)]) == 2
    assert "FAILED missing" in capsys.readouterr().err
    assert main(["backup", "first", "last", "--plan", str(plan)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2
    assert all(line.startswith("snapshot ") for line in out)


@pytest.mark.usefixtures("env")
def test_verify_of_a_snapshot_that_holds_nothing_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.repository import backup_path
    from drkit.workspace import Workspace

    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    with Workspace.load(plan) as ws, ws.stack().open_repository("primary") as repo:
        backup_path(repo, tmp_path / "empty", component="empty")  # 0 files
    capsys.readouterr()
    assert main(["verify", "empty", "--plan", str(plan)]) == 1
    out = capsys.readouterr().out
    assert "restore test FAILED" in out
    assert "there was nothing to verify" in out
    with Workspace.load(plan) as ws, ws.stack().open_repository("primary") as repo:
        assert repo.verifications() == []  # an empty snapshot is never marked verified
    assert main(["backup", "first", "--plan", str(plan)]) == 0
    assert main(["verify", "first", "--plan", str(plan)]) == 0
    with Workspace.load(plan) as ws:
        assert ws.last_success("restore_test", "empty") is None
        assert ws.last_success("restore_test", "first") is not None


@pytest.mark.usefixtures("env")
def test_backup_of_a_plan_with_nothing_to_back_up_is_not_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["datasets"], data["eval_sets"] = [], []
    data["models"] = [{"name": "m", "version": "1", "tier": "standard"}]  # no path
    plan.write_text(yaml.safe_dump(data))
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "--plan", str(plan)]) == 2
    assert "no component of the plan has anything drkit backs up" in capsys.readouterr().err


def test_a_dataset_url_path_is_an_object_store_job_and_versioned_datasets_are_marked(
    tmp_path: Path,
) -> None:
    from drkit.plan.loader import load_plan
    from drkit.workspace.protect import backup_jobs

    plan = _plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["datasets"][1]["path"] = "s3://bucket/train?endpoint=http://127.0.0.1:9"
    data["datasets"][0]["versioned"] = True
    plan.write_text(yaml.safe_dump(data))
    jobs, _ = backup_jobs(load_plan(plan), ["first", "missing", "last"])
    assert [(j.component, j.kind, j.versioned) for j in jobs] == [
        ("first", "files", True),
        ("missing", "store", False),  # was resolved as a local path under the plan
        ("last", "files", False),
    ]
    assert jobs[1].source.startswith("s3://bucket/train")


@pytest.mark.usefixtures("env")
def test_an_interrupted_backup_says_what_it_wrote_and_what_it_did_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import drkit.workspace.protect as protect

    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    real = protect.backup_path

    def ctrl_c_on_last(repo: Any, path: Path, **kw: Any) -> Any:
        if kw["component"] == "last":
            raise KeyboardInterrupt
        return real(repo, path, **kw)

    monkeypatch.setattr(protect, "backup_path", ctrl_c_on_last)
    capsys.readouterr()
    assert main(["backup", "--plan", str(plan)]) == 130
    captured = capsys.readouterr()
    assert " of first:" in captured.out  # the snapshot written before Ctrl-C is named
    assert "FAILED missing" in captured.err  # failures go to stderr
    assert "interrupted: not backed up: last, empty" in captured.err
