"""Versioned datasets: every snapshot a named version; forget keeps them; DR304 checks them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drkit.cli.main import main


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("DRKIT_REPO", "DRKIT_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    return tmp_path / "drkit.yaml"


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert got == code, captured.err
    return json.loads(captured.out) if captured.out.strip() else None


def _dr304(capsys: pytest.CaptureFixture[str], plan: Path, code: int = 0) -> list[Any]:
    report = _run(capsys, ["plan", "check", "--plan", str(plan)], code)
    return [v for v in report["violations"] if v["rule"] == "DR304"]


def test_starter_lineage_is_checked_against_the_repository(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [unchecked] = _dr304(capsys, starter)
    assert unchecked["severity"] == "info"  # day one: no repository to check against
    assert "could not be checked" in unchecked["message"]

    assert main(["repo", "init"]) == 0
    [day_one] = _dr304(capsys, starter)  # reachable, never backed up: a warning
    assert day_one["severity"] == "warning"
    assert "no version in the repository yet" in day_one["message"]

    train = starter.parent / "data" / "train"
    train.mkdir(parents=True)
    (train / "part-0.jsonl").write_text('{"x": 1}\n')
    [snap] = _run(capsys, ["backup", "train"])
    assert snap["meta"]["version"] == "v1"
    assert _dr304(capsys, starter) == []  # train@v1 exists now

    # a model that names a version that is not there fails the check
    starter.write_text(starter.read_text().replace('version: "v1"}]', 'version: "v7"}]'))
    [missing] = _dr304(capsys, starter, code=1)
    assert missing["severity"] == "error"
    assert "train@v7" in missing["message"]
    assert "versions: v1" in missing["message"]


def test_versions_are_kept_by_forget_unless_named(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    train = starter.parent / "data" / "train"
    train.mkdir(parents=True)
    (train / "a").write_text("1\n")
    assert _run(capsys, ["backup", "train"])[0]["meta"]["version"] == "v1"
    (train / "a").write_text("2\n")
    assert _run(capsys, ["backup", "train", "--version", "2026-q4"])[0]["meta"]["version"] == (
        "2026-q4"
    )
    (train / "a").write_text("3\n")
    assert _run(capsys, ["backup", "train"])[0]["meta"]["version"] == "v2"
    # a version is immutable
    failed = _run(capsys, ["backup", "train", "--version", "v1"], code=2)
    assert failed[0]["status"] == "failed"
    assert "exists already" in failed[0]["message"]

    done = _run(capsys, ["forget", "--keep-last", "1", "--prune"])
    assert done["remove"] == []
    assert all("version" in k["reasons"] for k in done["keep"])
    assert len(_run(capsys, ["snapshots", "-c", "train"])) == 3

    # by name: v1 trained the starter's model, so it is refused; 2026-q4 goes
    assert main(["forget", "-c", "train", "--version", "v1"]) == 2
    assert "would break their lineage" in capsys.readouterr().err
    assert main(["forget", "-c", "train", "--version", "nope"]) == 2
    assert main(["forget", "--version", "v2"]) == 2  # which dataset?
    gone = _run(capsys, ["forget", "-c", "train", "--version", "2026-q4"])
    assert [r["component"] for r in gone["remove"]] == ["train"]
    left = _run(capsys, ["snapshots", "-c", "train"])
    assert sorted(s["meta"]["version"] for s in left) == ["v1", "v2"]
    assert main(["snapshots", "-c", "train"]) == 0
    table = capsys.readouterr().out
    assert "train@v1" in table
    assert "train@v2" in table
    # a version restores by name
    out = starter.parent / "restored-v1"
    assert _run(capsys, ["restore", "train@v1", "--to", str(out)])["files"] == 1
    assert (out / "a").read_text() == "1\n"
    assert main(["restore", "train@2026-q4", "--to", str(starter.parent / "x")]) == 2
    assert "versions: v1, v2" in capsys.readouterr().err


def test_a_version_on_an_unversioned_component_is_refused(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    golden = starter.parent / "evals" / "golden"
    golden.mkdir(parents=True)
    (golden / "q.jsonl").write_text("{}\n")
    assert main(["backup", "golden-qa", "--version", "v1"]) == 2
    assert "versioned dataset" in capsys.readouterr().err
    [snap] = _run(capsys, ["backup", "golden-qa"])
    assert snap["meta"] == {}


def test_lineage_that_cannot_be_checked_is_a_warning(
    starter: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    monkeypatch.setenv("DRKIT_PASSWORD", "wrong")  # the repository exists but does not open
    [unchecked] = _dr304(capsys, starter)
    assert unchecked["severity"] == "warning"
    assert "could not be checked" in unchecked["message"]


def test_versions_are_kept_without_the_plan(
    starter: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The label is in the repository: a forget without the plan keeps the versions too."""
    from drkit.repository.retention import Policy, apply_policy

    assert main(["repo", "init"]) == 0
    train = starter.parent / "data" / "train"
    train.mkdir(parents=True)
    for i in range(2):
        (train / "a").write_text(f"{i}\n")
        assert main(["backup", "train"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no drkit.yaml here
    repo = f"file://{starter.parent / 'backups' / 'eu-west'}"
    done = _run(capsys, ["forget", "--keep-last", "1", "--repo", repo])
    assert done["remove"] == []
    snaps = _run(capsys, ["snapshots", "--repo", repo])
    assert len(snaps) == 2

    # the retention rule itself: protected snapshots are kept whatever the policy
    from drkit.repository.snapshot import Snapshot

    objs = [Snapshot.from_doc(s["id"], s) for s in snaps]
    kept = apply_policy(objs, Policy(keep_last=1), protected={objs[0].id})
    assert all(d.keep for d in kept)
    assert "version" in next(d for d in kept if d.snapshot.id == objs[0].id).reasons


def test_forget_of_an_unknown_component_is_refused_and_nothing_is_said(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    golden = starter.parent / "evals" / "golden"
    golden.mkdir(parents=True)
    (golden / "q.jsonl").write_text("{}\n")
    assert main(["backup", "golden-qa"]) == 0
    capsys.readouterr()
    assert main(["forget", "--keep-last", "1", "-c", "golden-q"]) == 2  # a typo
    assert "no snapshots of component(s) 'golden-q'" in capsys.readouterr().err
    assert main(["forget", "-c", "golden-qa"]) == 2  # the starter gives it no retention
    assert "no retention for 'golden-qa'" in capsys.readouterr().err
    assert main(["forget", "--keep-last", "1", "-c", "golden-qa"]) == 0
    assert "nothing to forget: the policy keeps all 1 snapshot(s)" in capsys.readouterr().out
