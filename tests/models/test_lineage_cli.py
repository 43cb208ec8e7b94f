"""``drkit lineage show|impact|check`` and the plan-check rules they enable, on a real
repository and its replica: what a version came from, a dataset's blast radius, and the
rollback closure verified in the replica (missing one artifact: exit 1, listed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.models.test_model_cli import _artifacts, _run, starter

from drkit.cli.main import main
from drkit.state.store import StateStore

__all__ = ["starter"]  # the fixture, shared with the registry's tests


def _registered(base: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = {}
    for v in ("1", "2"):
        out[v] = _run(
            capsys,
            [
                "model", "register", "assistant", v, "--upstream", f"openai=gpt-{v}",
                "--trained-on", f"train@v{v}", "--artifacts", _artifacts(base, int(v)),
            ],
        )  # fmt: skip
        _run(capsys, ["model", "alias", "set", "assistant", "champion", v, "--reason", f"r{v}"])
    return out


def test_show_and_impact(starter: Path, capsys: pytest.CaptureFixture[str]) -> None:
    versions = _registered(starter.parent, capsys)
    state = StateStore(starter.parent / "state.db")
    state.record_event(
        "eval.run",
        "golden-qa",
        "eval golden-qa: mean score 0.950",
        {"run_id": "r-2", "eval_set": "golden-qa", "eval_set_digest": "d" * 64,
         "model_version": "assistant@2", "mean_score": 0.95, "passed": True},
    )  # fmt: skip
    state.close()

    two = _run(capsys, ["lineage", "show", "assistant@2"])
    assert [(n["kind"], n["label"]) for n in two["closure"]] == [
        ("dataset", "train@v2"),
        ("artifacts", f"assistant@{versions['2']['artifacts'][:8]}"),
    ]
    assert [r["run_id"] for r in two["eval_runs"]] == ["r-2"]
    assert two["eval_runs"][0]["passed"] is True
    assert [(c["from"], c["to"]) for c in two["alias_events"]] == [("1", "2")]
    assert two["aliases_now"] == ["champion"]
    one = _run(capsys, ["lineage", "show", "assistant@1"])
    assert [(c["from"], c["to"]) for c in one["alias_events"]] == [(None, "1"), ("1", "2")]
    assert one["aliases_now"] == []
    assert one["eval_runs"] == []

    hit = _run(capsys, ["lineage", "impact", "train@v2"])
    assert [v["version"] for v in hit["versions"]] == ["2"]
    assert hit["aliases_now"] == [{"model": "assistant", "alias": "champion", "version": "2"}]
    assert [r["run_id"] for r in hit["eval_runs"]] == ["r-2"]
    by_id = _run(capsys, ["lineage", "impact", f"train@{hit['snapshot'][:10]}"])
    assert by_id["snapshot"] == hit["snapshot"]
    old = _run(capsys, ["lineage", "impact", "train@v1"])
    assert [v["version"] for v in old["versions"]] == ["1"]
    assert old["aliases_now"] == []

    # bad inputs: exit 2, with what exists
    for argv in (
        ["lineage", "show", "assistant@9"],
        ["lineage", "show", "nobody@1"],
        ["lineage", "show", "assistant"],
        ["lineage", "impact", "train@v9"],
        ["lineage", "impact", "kb@v1"],
        ["lineage", "impact", "train"],
    ):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if argv[2] == "train@v9":
            assert "train@v1, train@v2" in err


def _snapshot_file(repo_dir: Path, snapshot: str) -> Path:
    path = repo_dir / "snapshots" / snapshot  # docs/repository-format.md
    assert path.is_file()
    return path


def test_check_the_rollback_closure_in_a_replica(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    versions = _registered(starter.parent, capsys)
    primary = _run(capsys, ["lineage", "check"])
    assert primary["passed"] is True
    assert primary["versions"] == 2  # 2 names it, 1 named it within the window
    assert primary["checked"] == 4

    # copied to the replica: the closure is there too
    capsys.readouterr()
    assert main(["copy", "--to", "us-replica", "--init"]) == 0
    assert _run(capsys, ["lineage", "check", "--repo", "us-replica"])["passed"] is True

    # the replica loses the artifacts of the version a rollback would go back to
    art1 = versions["1"]["artifacts"]
    _snapshot_file(starter.parent / "backups" / "us-east", art1).unlink()
    got = _run(capsys, ["lineage", "check", "--repo", "us-replica"], code=1)
    assert got["passed"] is False
    [miss] = got["missing"]
    assert miss["ref"] == "assistant@1"
    assert miss["need"]["snapshot"] == art1
    assert miss["problem"] == "no such snapshot"
    assert miss["why"] == ["assistant:champion named it within the rollback window"]
    capsys.readouterr()
    assert main(["lineage", "check", "--repo", "us-replica"]) == 1
    out = capsys.readouterr()
    assert f"MISSING  assistant@1  artifacts assistant@{art1[:8]}" in out.out
    assert "lacks 1 snapshot(s) a rollback needs" in out.err

    # plan check: DR311 names the replica and what it lacks
    check = _run(capsys, ["plan", "check"], code=1)
    [dr311] = [v for v in check["violations"] if v["rule"] == "DR311"]
    assert "us-replica lacks artifacts" in dr311["message"]
    assert dr311["hint"] == "drkit copy --to us-replica"

    # forget --dry-run says what it keeps for the rollback, and why
    dry = _run(capsys, ["forget", "-c", "assistant", "--keep-last", "1", "--dry-run"])
    kept = {k["id"]: k["reasons"] for k in dry["keep"]}
    assert any("lineage assistant@1" in r for r in kept[art1])
    assert not dry["remove"]


def test_plan_check_flags_an_alias_target_that_does_not_resolve(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _registered(starter.parent, capsys)
    text = starter.read_text()
    starter.write_text(text.replace("model: gpt-4.1", 'model: "@assistant:canary"', 1))
    check = _run(capsys, ["plan", "check"], code=1)
    [dr310] = [v for v in check["violations"] if v["rule"] == "DR310"]
    assert "@assistant:canary does not resolve" in dr310["message"]
    assert dr310["field"].endswith(".model")
    starter.write_text(text.replace("model: gpt-4.1", 'model: "@assistant:champion"', 1))
    check = _run(capsys, ["plan", "check"], code=1)
    assert not [v for v in check["violations"] if v["rule"] == "DR310"]
    # the replica was never created: the closure is not there
    [dr311] = [v for v in check["violations"] if v["rule"] == "DR311"]
    assert dr311["message"].startswith("us-replica does not exist yet")
    assert dr311["hint"] == "drkit copy --to us-replica --init"


def test_the_registry_and_lineage_come_back_from_the_repository_alone(
    starter: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _registered(starter.parent, capsys)
    before = {
        "show": _run(capsys, ["model", "show", "assistant"]),
        "history": _run(capsys, ["model", "alias", "history", "assistant"]),
        "lineage": _run(capsys, ["lineage", "show", "assistant@1"]),
        "impact": _run(capsys, ["lineage", "impact", "train@v2"]),
    }
    repo_url = (starter.parent / "backups" / "eu-west").as_uri()
    _run(capsys, ["state", "backup"])
    # the state and the plan are lost: the repository and its key (DRKIT_PASSWORD) remain
    (starter.parent / "state.db").unlink()
    starter.unlink()
    restored = starter.parent / "restored" / "state.db"
    monkeypatch.setenv("DRKIT_STATE", str(restored))
    _run(capsys, ["state", "restore", "--repo", repo_url])
    after = {
        "show": _run(capsys, ["model", "show", "assistant"]),
        "history": _run(capsys, ["model", "alias", "history", "assistant"]),
        "lineage": _run(capsys, ["lineage", "show", "assistant@1"]),
        "impact": _run(capsys, ["lineage", "impact", "train@v2"]),
    }
    assert after == before
    assert _run(capsys, ["lineage", "check", "--repo", repo_url])["passed"] is True
