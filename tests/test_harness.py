"""Eval harness code (``harnesses``): git bundles of every ref, incremental, restored by
cloning, verified with ``git bundle verify``; real git repositories in tmp_path."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.cli.main import main
from drkit.connectors import git


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", f"add {name}")
    return _git(repo, "rev-parse", "HEAD")


def _plan(tmp_path: Path, harness_path: str = "./harness") -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "name": "harness-test",
        "tiers": {"standard": {"rto": "1h", "rpo": "1d"}},
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{tmp_path / 'repo'}", "region": "eu"}
        },
        "harnesses": [{"name": "harness", "path": harness_path, "tier": "standard"}],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repo = tmp_path / "harness"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "score.py", "def score(): return 1\n")
    _git(repo, "tag", "-a", "v1", "-m", "release v1")  # an annotated tag: a tag object
    _git(repo, "branch", "experiment")
    return repo


def _snapshots(plan: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["snapshots", "--plan", str(plan), "--json"]) == 0
    snaps: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return snaps


@pytest.mark.usefixtures("cli_env")
def test_harness_backup_is_incremental_and_restores_every_ref_by_cloning(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    _commit(source, "data.txt", "x" * 50_000)
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    # a ref moved to a commit already stored: no new history, no bundle, refs kept
    _git(source, "branch", "-f", "experiment", "main")
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    snaps = _snapshots(plan, capsys)
    assert [s["kind"] for s in snaps] == ["git"] * 3
    first, second, third = snaps
    assert first["meta"]["full"]
    assert first["parent"] is None
    assert second["parent"] == first["id"]
    assert not second["meta"]["full"]
    assert third["parent"] == second["id"]
    assert third["meta"]["bundle"] is False
    assert third["meta"]["refs"] == git.refs(source)

    # the second bundle holds only the new commit: it needs the first one's commit
    from drkit.workspace import Workspace
    from drkit.workspace.harness import BUNDLE, chain

    with Workspace.load(plan) as ws, ws.stack().open_repository("primary") as repo:
        snap = repo.find_snapshot(second["id"])
        assert [s.id for s in chain(repo, repo.find_snapshot(third["id"]))] == [
            first["id"],
            second["id"],
            third["id"],
        ]
        from drkit.repository import read_file

        b = tmp_path / "second.bundle"
        b.write_bytes(read_file(repo, snap, BUNDLE))
    heads = subprocess.run(
        ["git", "bundle", "list-heads", str(b)], capture_output=True, text=True, check=True
    )
    assert "refs/heads/main" in heads.stdout
    empty = tmp_path / "empty-git"
    _git(tmp_path, "init", "-q", str(empty))
    refused = subprocess.run(
        ["git", "bundle", "verify", str(b)], cwd=empty, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "prerequisite" in refused.stderr.lower()

    # the restore test clones, verifies every bundle, fscks and compares the refs
    capsys.readouterr()
    assert main(["verify", "harness", "--plan", str(plan)]) == 0
    assert "harness" in capsys.readouterr().out

    out = tmp_path / "restored"
    assert main(["restore", "latest", "--component", "harness", "--to", str(out),
                 "--plan", str(plan), "--json"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert res["kind"] == "git"
    assert res["refs"] == 3
    assert git.refs(out) == git.refs(source)
    assert git.head(out) == git.head(source)
    assert (out / "data.txt").read_text() == "x" * 50_000
    assert git.fsck(out) == []
    assert not git.is_dirty(out)

    # a copy carries the chain: the replica restores the same repository
    replica = f"file://{tmp_path / 'replica'}"
    assert main(["copy", "--to", replica, "--init", "--plan", str(plan)]) == 0
    again = tmp_path / "from-replica"
    assert main(["restore", "latest", "-c", "harness", "--to", str(again), "--repo", replica,
                 "--plan", str(plan)]) == 0  # fmt: skip
    assert git.refs(again) == git.refs(source)

    # an older snapshot restores the refs it had
    old = tmp_path / "old"
    assert main(["restore", first["id"], "--to", str(old), "--plan", str(plan)]) == 0
    assert git.refs(old) == first["meta"]["refs"]
    assert not (old / "data.txt").exists()
    # a non-empty target is refused and left alone
    capsys.readouterr()
    assert main(["restore", first["id"], "--to", str(old), "--plan", str(plan)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_env")
def test_a_harness_path_that_is_not_a_git_repository_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "f.txt").write_text("x")
    plan = _plan(tmp_path, "./plain")
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["backup", "harness", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "is not a git repository" in err
    assert "drkit.yaml:" in err
    assert "harnesses[0].path" in err
    assert "Traceback" not in err
    assert _snapshots(plan, capsys) == []


@pytest.mark.usefixtures("cli_env")
def test_a_broken_chain_fails_the_restore_test_and_a_full_backup_mends_it(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    _commit(source, "b.py", "b\n")
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    first = _snapshots(plan, capsys)[0]
    # retention keeps what the newest snapshot's bundle needs (its parent)
    assert main(["forget", "--keep-last", "1", "--plan", str(plan)]) == 0
    assert next(s["id"] for s in _snapshots(plan, capsys)) == first["id"]
    assert main(["verify", "harness", "--plan", str(plan)]) == 0
    # a parent lost anyway: the restore test fails, a full backup mends the chain
    from drkit.workspace import Workspace

    with Workspace.load(plan) as ws, ws.stack().open_repository("primary") as repo:
        repo.forget_snapshot(first["id"])
    capsys.readouterr()
    assert main(["verify", "harness", "--plan", str(plan)]) == 1
    assert "no longer in the repository" in capsys.readouterr().out
    assert main(["backup", "harness", "--full", "--plan", str(plan)]) == 0
    assert main(["verify", "harness", "--plan", str(plan)]) == 0


def _eval_set(path: Path, n: int = 6) -> Path:
    lines = [
        json.dumps(
            {"id": f"q{i}", "prompt": f"say {i}", "expected": f"say {i}", "scorer": "contains"}
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.usefixtures("cli_env")
def test_an_eval_run_records_the_harness_commit_and_the_gate_refuses_a_change(
    tmp_path: Path,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from drkit.connectors.llm.simulator import ProviderSimulator
    from drkit.state.store import StateStore

    plan = _plan(tmp_path)
    es = _eval_set(tmp_path / "set.jsonl")
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-harness-test")
    sim = ProviderSimulator("openai", seed=3, mode="echo", api_key="sk-harness-test")
    sim.start()
    try:
        run = ["eval", "run", str(es), "--target", sim.base_url, "--api-key-env",
               "EVAL_TEST_KEY", "--history", str(tmp_path / "hist"), "--plan", str(plan),
               "--json"]  # fmt: skip
        capsys.readouterr()
        assert main(run) == 0
        first = json.loads(capsys.readouterr().out)
        assert first["harness"] == "harness"
        assert first["harness_commit"] == git.head(source)[1]
        assert first["harness_dirty"] is False
        _commit(source, "score.py", "def score(): return 0.5\n")  # the scorer changed
        (source / "notes.txt").write_text("uncommitted\n")
        assert main(run) == 0
        second = json.loads(capsys.readouterr().out)
    finally:
        sim.stop()
    assert second["harness_commit"] == git.head(source)[1] != first["harness_commit"]
    assert second["harness_dirty"] is True
    events = StateStore(tmp_path / "state.db").events(kind="eval.run")
    assert [e.data["harness_commit"] for e in events] == [
        first["harness_commit"],
        second["harness_commit"],
    ]

    assert main(["eval", "show", second["run_id"], "--history", str(tmp_path / "hist")]) == 0
    shown = capsys.readouterr().out
    assert f"harness harness at {second['harness_commit'][:12]} (uncommitted changes)" in shown
    cmp = ["eval", "compare", first["run_id"], second["run_id"], "--history",
           str(tmp_path / "hist"), "--plan", str(plan)]  # fmt: skip
    assert main(cmp) == 2
    err = capsys.readouterr().err
    assert "different eval harness commits" in err
    assert first["harness_commit"][:12] in err
    assert "--allow-harness-change" in err
    assert main([*cmp, "--allow-harness-change", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "no significant change"
    assert out["baseline_harness_commit"] == first["harness_commit"]
    assert out["candidate_harness_commit"] == second["harness_commit"]
    assert main([*cmp, "--allow-harness-change"]) == 0
    assert f"harness changed ({first['harness_commit'][:12]} -> " in capsys.readouterr().out
    # the same commit on both sides: compared without the option
    same = ["eval", "compare", second["run_id"], second["run_id"], "--history",
            str(tmp_path / "hist"), "--plan", str(plan)]  # fmt: skip
    assert main(same) == 0


@pytest.mark.usefixtures("cli_env")
def test_an_eval_run_with_a_harness_that_is_no_git_repository_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    plan = _plan(tmp_path, "./plain")
    es = _eval_set(tmp_path / "set.jsonl")
    capsys.readouterr()
    code = main(["eval", "run", str(es), "--target", "http://127.0.0.1:1",
                 "--history", str(tmp_path / "hist"), "--plan", str(plan)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "is not a git repository" in err
    assert "harnesses[0].path" in err
    assert not (tmp_path / "hist").exists()


@pytest.mark.usefixtures("cli_env")
def test_a_bare_harness_restores_and_a_subdirectory_or_an_empty_repository_is_refused(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (source / "sub").mkdir()
    assert not git.is_repository(source / "sub")  # would bundle the enclosing repository
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(tmp_path / "bare.git")],
                   check=True)  # fmt: skip
    plan = _plan(tmp_path, "./bare.git")
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    out = tmp_path / "restored"
    assert main(["restore", "latest", "-c", "harness", "--to", str(out), "--plan", str(plan)]) == 0
    assert git.refs(out) == git.refs(tmp_path / "bare.git")
    assert (out / "score.py").is_file()

    _git(tmp_path, "init", "-q", "empty")
    plan = _plan(tmp_path, "./empty")
    capsys.readouterr()
    assert main(["backup", "harness", "--plan", str(plan)]) == 1  # nothing protected
    assert "has no commit" in capsys.readouterr().out


def test_the_model_gate_refuses_runs_of_different_harness_commits(tmp_path: Path) -> None:
    from drkit.drills.model_gate import recorded_eval_gate
    from drkit.state.store import StateStore

    state = StateStore(tmp_path / "state.db")
    try:

        def run(version: str, commit: str | None) -> None:
            data = {"model_version": f"m@{version}", "eval_set": "s", "eval_set_digest": "d",
                    "mean_score": 1.0, "passed": True, "harness_commit": commit}  # fmt: skip
            state.record_event("eval.run", "s", "run", data)

        run("1", "a" * 40)
        run("2", "b" * 40)
        run("3", "a" * 40)
        run("4", None)  # recorded none (an imported run): the metrics decide
        gate = recorded_eval_gate(state)
        refused = gate("m", "2", "1")
        assert not refused.passed
        assert "different eval harness commits (aaaaaaaaaaaa vs bbbbbbbbbbbb)" in refused.reason
        assert gate("m", "3", "1").passed
        assert gate("m", "4", "1").passed
    finally:
        state.close()


@pytest.mark.usefixtures("cli_env")
def test_history_rewritten_and_collected_since_the_parent_still_backs_up_incrementally(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    _git(source, "checkout", "-q", "-b", "throwaway")
    gone = _commit(source, "tmp.txt", "soon gone\n")
    _git(source, "checkout", "-q", "main")
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    _git(source, "branch", "-D", "throwaway")
    _git(source, "reflog", "expire", "--expire=now", "--all")
    _git(source, "gc", "-q", "--prune=now")
    assert git.existing(source, [gone]) == []  # a parent's ref names a commit now gone
    _commit(source, "new.py", "new\n")
    assert main(["backup", "harness", "--plan", str(plan)]) == 0
    out = tmp_path / "restored"
    assert main(["restore", "latest", "-c", "harness", "--to", str(out), "--plan", str(plan)]) == 0
    assert git.refs(out) == git.refs(source)
    assert "refs/heads/throwaway" not in git.refs(out)
    assert (out / "new.py").is_file()
