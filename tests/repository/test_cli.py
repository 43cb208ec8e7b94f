"""The CLI over the library: every command, --json, exit codes, passwords from env only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.repository.conftest import tree_state

from drkit.cli.main import main


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    monkeypatch.setenv("DRKIT_REPO", str(repo))
    monkeypatch.setenv("DRKIT_PASSWORD", "cli password")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.delenv("DRKIT_PASSWORD_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return repo


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert main([*argv, "--json"]) == code
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else None


def test_full_cycle(
    env: Path, sample_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = _json(capsys, ["repo", "init"])
    assert isinstance(init, dict)
    assert init["id"]
    snaps = _json(capsys, ["backup", str(sample_tree), "--component", "ds", "--tag", "t1"])
    assert isinstance(snaps, list)
    assert snaps[0]["component"] == "ds"
    assert snaps[0]["tags"] == ["t1"]
    listed = _json(capsys, ["snapshots", "--component", "ds"])
    assert isinstance(listed, list)
    assert [s["id"] for s in listed] == [snaps[0]["id"]]
    restored = _json(capsys, ["restore", snaps[0]["id"][:8], "--to", str(tmp_path / "out")])
    assert isinstance(restored, dict)
    assert tree_state(tmp_path / "out") == tree_state(sample_tree)
    report = _json(capsys, ["check", "--read-data"])
    assert isinstance(report, dict)
    assert report["ok"] is True
    assert _json(capsys, ["check", "--read-data-subset", "2/2"])
    _json(capsys, ["backup", str(sample_tree), "--component", "ds"])
    dry = _json(capsys, ["forget", "--keep-last", "1", "--dry-run"])
    assert isinstance(dry, dict)
    assert len(dry["remove"]) == 1
    done = _json(capsys, ["forget", "--keep-last", "1", "--prune"])
    assert isinstance(done, dict)
    assert done["prune"] is not None
    copied = _json(capsys, ["copy", "--to", str(tmp_path / "replica"), "--init"])
    assert isinstance(copied, dict)
    assert len(copied["snapshots_copied"]) == 1
    healed = _json(capsys, ["repair", "--from", str(tmp_path / "replica")])
    assert isinstance(healed, dict)
    assert healed["ok"] is True


def test_keys_and_errors(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshots"]) == 2  # no repository yet
    assert "repo init" in capsys.readouterr().err
    assert main(["repo", "init"]) == 0
    assert main(["repo", "init"]) == 2  # exists
    monkeypatch.setenv("DRKIT_NEW_PASSWORD", "second")
    added = _json(capsys, ["repo", "key", "add"])
    assert isinstance(added, dict)
    keys = _json(capsys, ["repo", "key", "list"])
    assert isinstance(keys, list)
    assert len(keys) == 2
    monkeypatch.setenv("DRKIT_PASSWORD", "wrong")
    capsys.readouterr()
    assert main(["snapshots"]) == 2
    err = capsys.readouterr().err
    assert "wrong" not in err
    assert "DRKIT_PASSWORD" in err
    monkeypatch.setenv("DRKIT_PASSWORD", "second")
    capsys.readouterr()
    assert main(["repo", "key", "remove", added["added"][:10]]) == 2  # the key in use
    assert "the key this command opened the repository with" in capsys.readouterr().err
    monkeypatch.setenv("DRKIT_PASSWORD", "cli password")
    assert main(["repo", "key", "remove", added["added"][:10]]) == 0
    assert main(["repo", "key", "remove", added["added"][:10]]) == 2  # gone: no match
    assert main(["repo", "key", "remove", keys[0]["id"]]) == 2  # the last key
    assert main(["check", "--read-data-subset", "3/2"]) == 2
    assert main(["restore", "nope", "--to", "x"]) == 2
    assert main(["backup", "/no/such/path"]) == 2
    assert main(["forget"]) == 2  # no policy and no plan
    monkeypatch.delenv("DRKIT_PASSWORD")
    assert main(["snapshots"]) == 2


def test_check_exits_1_on_damage(env: Path, sample_tree: Path) -> None:
    assert main(["repo", "init"]) == 0
    assert main(["backup", str(sample_tree)]) == 0
    pack = next(p for p in (env / "data").rglob("*") if p.is_file())
    pack.write_bytes(pack.read_bytes()[:-10])
    assert main(["check"]) == 1  # the pack's size no longer matches the index
    assert main(["check", "--read-data"]) == 1


def test_password_file(env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from a file\n")
    monkeypatch.delenv("DRKIT_PASSWORD")
    monkeypatch.setenv("DRKIT_PASSWORD_FILE", str(pw))
    assert main(["repo", "init"]) == 0
    assert main(["snapshots"]) == 0
    monkeypatch.setenv("DRKIT_PASSWORD", "from a file")
    monkeypatch.delenv("DRKIT_PASSWORD_FILE")
    assert main(["snapshots"]) == 0


def test_plan_repository_component_and_retention(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --repo the plan's primary is used; a COMPONENT resolves to its path;
    forget without --keep-* applies the plan's per-component retention."""
    monkeypatch.delenv("DRKIT_REPO", raising=False)
    monkeypatch.delenv("DRKIT_PASSWORD_FILE", raising=False)
    monkeypatch.setenv("DRKIT_PASSWORD", "plan password")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    (train / "part-0.jsonl").write_text('{"x": 1}\n')
    plan = str(tmp_path / "drkit.yaml")
    assert main(["repo", "init", "--plan", plan]) == 0
    for _ in range(2):
        snaps = _json(capsys, ["backup", "train", "--plan", plan])
        assert isinstance(snaps, list)
        assert snaps[0]["component"] == "train"
        assert snaps[0]["source"] == str(train)
    listed = _json(capsys, ["snapshots", "--plan", plan])
    assert isinstance(listed, list)
    assert len(listed) == 2
    dry = _json(capsys, ["forget", "--plan", plan, "--dry-run"])
    assert isinstance(dry, dict)
    # train is a versioned dataset: each snapshot is a named version that the plan's
    # retention never removes (keep_daily alone would drop one of the same day)
    assert dry["remove"] == []
    assert sorted("version" in k["reasons"] for k in dry["keep"]) == [True, True]
    assert main(["backup", "no-such-component", "--plan", plan]) == 2


def test_retention_options_are_checked_where_given(
    env: Path, sample_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["repo", "init"]) == 0
    assert main(["backup", str(sample_tree)]) == 0
    capsys.readouterr()
    assert main(["forget", "--keep-daily", "-3"]) == 2
    assert "-1 for all" in capsys.readouterr().err
    # --keep-last 0 is given, so the plan is not used; it names no rule: refused
    assert main(["forget", "--keep-last", "0"]) == 2
    assert "all 0" in capsys.readouterr().err
    kept = _json(capsys, ["forget", "--keep-daily", "-1", "--dry-run"])
    assert isinstance(kept, dict)
    assert kept["remove"] == []
    assert main(["check", "--read-data", "--read-data-subset", "1/2"]) == 2
    assert "exclude each other" in capsys.readouterr().err
