"""The model registry end to end through the CLI: register, aliases with history, the
gate of promote/rollback, and forget keeping what a rollback needs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from drkit.cli.main import main
from drkit.state.store import StateStore


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    assert main(["repo", "init"]) == 0
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    for n in (1, 2):
        (train / "part.jsonl").write_text(f'{{"x": {n}}}\n')
        assert main(["backup", "train"]) == 0
    return tmp_path / "drkit.yaml"


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert got == code, captured.err
    return json.loads(captured.out) if captured.out.strip() else None


def _artifacts(base: Path, n: int) -> str:
    d = base / f"art{n}"
    d.mkdir()
    (d / "weights.bin").write_bytes(bytes([n]) * 64)
    return str(d)


def test_register_show_list_and_bad_inputs(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _run(
        capsys,
        [
            "model", "register", "assistant", "1", "--upstream", "openai=gpt-4.1",
            "--trained-on", "train@v1", "--artifacts", _artifacts(starter.parent, 1),
            "--tag", "stage=prod", "--description", "first",
        ],
    )  # fmt: skip
    assert one["new_model"] is True
    assert one["trained_on"][0]["version"] == "v1"
    assert len(one["trained_on"][0]["snapshot"]) == 64
    assert one["artifacts"]
    assert one["tags"] == {"stage": "prod"}
    snaps = _run(capsys, ["snapshots", "-c", "assistant"])
    assert [s["id"] for s in snaps] == [one["artifacts"]]
    # a snapshot id prefix names a dataset snapshot too
    v2 = _run(capsys, ["snapshots", "-c", "train"])[1]["id"]
    two = _run(capsys, ["model", "register", "assistant", "2", "--trained-on", f"train@{v2[:10]}"])
    assert two["new_model"] is False
    assert two["trained_on"][0]["version"] == "v2"

    before = _run(capsys, ["model", "show", "assistant"])
    # immutable; unknown dataset version; not a dataset; snapshot of another component
    _run(capsys, ["model", "register", "assistant", "2"], code=2)
    _run(capsys, ["model", "register", "assistant", "3", "--trained-on", "train@v9"], code=2)
    _run(capsys, ["model", "register", "assistant", "3", "--trained-on", "kb@v1"], code=2)
    bad = _run(
        capsys,
        ["model", "register", "assistant", "3", "--trained-on", f"train@{one['artifacts'][:12]}"],
        code=2,
    )
    assert "of 'assistant', not of dataset 'train'" in bad["error"]["message"]
    _run(capsys, ["model", "register", "assistant", "3", "--upstream", "openai"], code=2)
    _run(capsys, ["model", "show", "nosuch"], code=2)
    _run(capsys, ["model", "show", "assistant@7"], code=2)
    _run(capsys, ["model", "alias", "set", "assistant", "champion", "7", "--reason", "x"], code=2)
    _run(capsys, ["model", "alias", "set", "assistant", "champion", "1", "--reason", " "], code=2)
    assert _run(capsys, ["model", "show", "assistant"]) == before  # nothing changed
    [row] = _run(capsys, ["model", "list"])["models"]
    assert row == {"model": "assistant", "versions": ["1", "2"], "latest": "2", "aliases": {}}


def test_alias_history_answers_what_served_at_a_time(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for v in ("1", "2"):
        _run(capsys, ["model", "register", "assistant", v, "--upstream", f"openai=m{v}"])
    _run(capsys, ["model", "alias", "set", "assistant", "champion", "1", "--reason", "first"])
    between = time.time()
    time.sleep(0.05)
    moved = _run(
        capsys,
        ["model", "alias", "set", "assistant", "champion", "2", "--reason", "better",
         "--eval-run", "run-7"],
    )  # fmt: skip
    assert (moved["from"], moved["to"], moved["eval_runs"]) == ("1", "2", ["run-7"])
    hist = _run(capsys, ["model", "alias", "history", "assistant"])["history"]
    assert [(h["from"], h["to"], h["reason"]) for h in hist] == [
        (None, "1", "first"),
        ("1", "2", "better"),
    ]
    assert all(h["by"] for h in hist)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(between)) + f"{between % 1:.3f}"[1:]
    at = _run(capsys, ["model", "alias", "history", "assistant", "--at", stamp + "Z"])
    assert at["served"] == {"champion": "1"}
    assert _run(capsys, ["model", "alias", "history", "assistant", "--at", "1d"])["served"] == {}
    _run(capsys, ["model", "alias", "history", "assistant", "--at", "last tuesday"], code=2)


def _eval(state_db: Path, version: str, score: float, passed: bool) -> None:
    state = StateStore(state_db)
    state.record_event(
        "eval.run",
        "golden-qa",
        f"assistant@{version}",
        {
            "model": "assistant",
            "model_version": version,
            "eval_set": "golden-qa",
            "eval_set_version": "v1",
            "metrics": {"accuracy": score},
            "passed": passed,
        },
    )
    state.close()


def test_promote_refuses_a_regression_and_rollback_skips_failing_versions(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = starter.parent / "state.db"
    for v in ("1", "2", "3", "4"):
        _run(capsys, ["model", "register", "assistant", v])
    _eval(db, "1", 0.90, True)
    _run(capsys, ["model", "promote", "assistant", "1", "--to", "champion"])
    _eval(db, "2", 0.80, True)
    refused = _run(capsys, ["model", "promote", "assistant", "2", "--to", "champion"], code=1)
    assert refused["promoted"] is False
    assert refused["gate"]["metrics"]["accuracy"]["baseline"] == 0.9
    _run(capsys, ["model", "promote", "assistant", "4", "--to", "champion"], code=1)  # no run
    _eval(db, "3", 0.95, True)
    ok = _run(capsys, ["model", "promote", "assistant", "3", "--to", "champion"])
    assert ok["change"]["action"] == "promote"
    assert ok["change"]["eval_runs"]
    # a bad version reaches the alias by hand (no gate); the eval says it fails
    _eval(db, "4", 0.10, False)
    _run(capsys, ["model", "alias", "set", "assistant", "champion", "4", "--reason", "hotfix"])
    _eval(db, "3", 0.20, False)  # 3 re-evaluated on the current eval set: it fails now
    _eval(db, "2", 0.10, False)
    back = _run(capsys, ["model", "rollback", "assistant"])
    assert back["change"]["to"] == "1"  # the newest earlier version that passes
    assert [s["candidate"] for s in back["skipped"]] == ["3", "2"]  # not blindly the previous
    assert back["change"]["action"] == "rollback"
    # nothing earlier than 1: exit 1, the alias unchanged
    _run(capsys, ["model", "rollback", "assistant", "--alias", "champion"], code=1)
    hist = _run(capsys, ["model", "alias", "history", "assistant"])["history"]
    assert hist[-1]["to"] == "1"
    assert len(hist) == 4


def test_forget_prune_keeps_what_an_aliased_version_needs(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = {}
    for v in ("1", "2", "3"):
        got = _run(
            capsys,
            [
                "model",
                "register",
                "assistant",
                v,
                "--artifacts",
                _artifacts(starter.parent, int(v)),
            ],
        )
        ids[v] = got["artifacts"]
    _run(capsys, ["model", "alias", "set", "assistant", "champion", "1", "--reason", "x"])
    done = _run(capsys, ["forget", "-c", "assistant", "--keep-last", "1", "--prune"])
    assert [r["id"] for r in done["remove"]] == [ids["2"]]
    kept = {k["id"]: k["reasons"] for k in done["keep"]}
    assert set(kept) == {ids["1"], ids["3"]}
    assert any("assistant@1" in r for r in kept[ids["1"]])
    assert main(["check", "--read-data"]) == 0
    restored = starter.parent / "restored"
    assert main(["restore", ids["1"], "--to", str(restored)]) == 0
    assert any(p.name == "weights.bin" for p in restored.rglob("*"))


def test_the_agents_retention_job_keeps_what_an_aliased_version_needs(
    starter: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent's unattended retention is the same forget: it keeps the snapshots a
    rollback within the window needs, as `drkit forget` does."""
    import yaml

    from drkit.agent.jobs import _retention

    ids = {}
    for v in ("1", "2", "3"):
        art = _artifacts(starter.parent, int(v))
        ids[v] = _run(capsys, ["model", "register", "support-ft", v, "--artifacts", art])[
            "artifacts"
        ]
    _run(capsys, ["model", "alias", "set", "support-ft", "champion", "1", "--reason", "x"])
    data = yaml.safe_load(starter.read_text())
    data["models"][0]["retention"] = {"keep_last": 1}
    starter.write_text(yaml.safe_dump(data))
    _retention(starter)()
    left = {s["id"] for s in _run(capsys, ["snapshots", "--component", "support-ft"])}
    assert left == {ids["1"], ids["3"]}  # 2 went; 1 is what champion rolls back to
