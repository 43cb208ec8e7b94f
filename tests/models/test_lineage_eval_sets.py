"""The eval sets in the rollback closure, on a real repository, its replica and real eval
runs against a provider simulator: a version promoted on runs of eval set v1 keeps the
eval-set snapshot holding v1 after the file changed (forget --dry-run says why), `lineage
check` verifies it and names it when a replica lacks it, and retention lets it go once
no alias named the version within the rollback window."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.models.test_model_cli import _run, starter

from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.evals.evalset import load_eval_set

__all__ = ["starter"]  # the fixture, shared with the registry's tests


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ES_SIM_KEY", "sk-es-sim")
    server = ProviderSimulator("openai", seed=5, mode="echo", api_key="sk-es-sim")
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


def _write_eval_set(path: Path, n: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i}", "prompt": f"say {i}", "expected": f"say {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_eval_set(path).digest


def _eval(capsys: pytest.CaptureFixture[str], path: Path, sim: str, version: str) -> None:
    summary = _run(
        capsys,
        [
            "eval", "run", str(path), "--target", sim, "--api-key-env", "ES_SIM_KEY",
            "--model-version", f"support-ft@{version}",
        ],
    )  # fmt: skip
    assert summary["passed"] is True


def _backup(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["backup", "golden-qa"]) == 0
    snaps = _run(capsys, ["snapshots", "-c", "golden-qa"])
    return str(snaps[-1]["id"])


def test_the_eval_set_a_promotion_ran_on_stays_restorable(
    starter: Path, sim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = starter.parent
    for v in ("1", "2", "3"):
        _run(capsys, ["model", "register", "support-ft", v, "--upstream", f"openai=gpt-{v}",
                      "--trained-on", "train@v2"])  # fmt: skip
    golden = base / "evals" / "golden" / "golden.jsonl"
    v1 = _write_eval_set(golden, 3)
    for v in ("1", "2"):
        _eval(capsys, golden, sim, v)
    _run(capsys, ["model", "alias", "set", "support-ft", "champion", "1", "--reason", "first"])
    _run(capsys, ["model", "promote", "support-ft", "2", "--to", "champion"])

    # the eval set was never backed up: the check names it, with the backup to run
    got = _run(capsys, ["lineage", "check"], code=1)
    assert {(m["ref"], m["need"]["kind"], m["need"]["label"]) for m in got["missing"]} == {
        ("support-ft@1", "eval_set", f"golden@{v1[:8]}"),
        ("support-ft@2", "eval_set", f"golden@{v1[:8]}"),
    }
    assert got["missing"][0]["need"]["digest"] == v1
    assert got["missing"][0]["problem"] == "no snapshot of golden-qa holds a file with this content"
    capsys.readouterr()
    assert main(["lineage", "check"]) == 1
    assert "Try: drkit backup golden-qa" in capsys.readouterr().err

    shown = _run(capsys, ["lineage", "show", "support-ft@2"])
    [es] = shown["eval_sets"]
    assert (es["label"], es["digest"]) == (f"golden@{v1[:8]}", v1)
    assert len(es["runs"]) == 2  # its own run, and the baseline's the promote recorded
    capsys.readouterr()
    assert main(["lineage", "show", "support-ft@2"]) == 0
    assert f"eval_set  golden@{v1[:8]}  digest {v1[:12]}" in capsys.readouterr().out

    held_v1 = _backup(capsys)
    # the eval set changes and is backed up again: only the first snapshot holds v1
    v2 = _write_eval_set(golden, 4)
    assert v2 != v1
    held_v2 = _backup(capsys)
    assert held_v2 != held_v1
    checked = _run(capsys, ["lineage", "check"])
    assert checked["passed"] is True
    rows = [r for r in checked["ok"] if r["need"]["kind"] == "eval_set"]
    assert {(r["ref"], r["need"]["snapshot"]) for r in rows} == {
        ("support-ft@1", held_v1),
        ("support-ft@2", held_v1),
    }

    # forget --keep-last 1 keeps the v1 snapshot for the rollback, and says why
    dry = _run(capsys, ["forget", "-c", "golden-qa", "--keep-last", "1", "--dry-run"])
    kept = {k["id"]: k["reasons"] for k in dry["keep"]}
    assert kept[held_v1] == [
        f"lineage support-ft@1 (support-ft:champion): eval set golden@{v1[:8]}; "
        f"lineage support-ft@2 (support-ft:champion): eval set golden@{v1[:8]}"
    ]
    assert not dry["remove"]
    capsys.readouterr()
    assert main(["forget", "-c", "golden-qa", "--keep-last", "1", "--dry-run"]) == 0
    assert f"eval set golden@{v1[:8]}" in capsys.readouterr().out

    # a replica without that snapshot: exit 1 naming it; DR311 says the same
    capsys.readouterr()
    assert main(["copy", "--to", "us-replica", "--init"]) == 0
    assert _run(capsys, ["lineage", "check", "--repo", "us-replica"])["passed"] is True
    (base / "backups" / "us-east" / "snapshots" / held_v1).unlink()
    got = _run(capsys, ["lineage", "check", "--repo", "us-replica"], code=1)
    assert {(m["ref"], m["need"]["label"]) for m in got["missing"]} == {
        ("support-ft@1", f"golden@{v1[:8]}"),
        ("support-ft@2", f"golden@{v1[:8]}"),
    }
    capsys.readouterr()
    assert main(["lineage", "check", "--repo", "us-replica"]) == 1
    out = capsys.readouterr()
    assert f"MISSING  support-ft@2  eval_set golden@{v1[:8]} (digest {v1[:12]})" in out.out
    assert "Try: drkit copy --to us-replica" in out.err
    check = _run(capsys, ["plan", "check"], code=1)
    dr311 = [v for v in check["violations"] if v["rule"] == "DR311"]
    assert any(f"us-replica lacks eval_set golden@{v1[:8]}" in v["message"] for v in dr311)

    # version 3, evaluated on eval set v2, takes the alias; with a rollback window of 1s
    # for the plan's model (named as in the registry), once it has passed no alias named
    # 1 or 2 within it, and retention lets the v1 snapshot go
    _eval(capsys, golden, sim, "3")
    _run(capsys, ["model", "alias", "set", "support-ft", "champion", "3", "--reason", "v3"])
    line = '    trained_on: [{dataset: train, version: "v1"}]\n'
    text = starter.read_text()
    assert line in text
    starter.write_text(text.replace(line, line + "    rollback_window: 1s\n", 1))
    time.sleep(1.2)
    done = _run(capsys, ["forget", "-c", "golden-qa", "--keep-last", "1"])
    assert [r["id"] for r in done["remove"]] == [held_v1]
    kept = {k["id"]: k["reasons"] for k in done["keep"]}
    assert f"lineage support-ft@3 (support-ft:champion): eval set golden@{v2[:8]}" in kept[held_v2]
    after = _run(capsys, ["lineage", "check"])
    assert after["passed"] is True
    assert {r["ref"] for r in after["ok"]} == {"support-ft@3"}
    assert [r["need"]["snapshot"] for r in after["ok"] if r["need"]["kind"] == "eval_set"] == [
        held_v2
    ]


def test_an_eval_set_of_several_chunks_is_found_by_its_digest(tmp_path: Path) -> None:
    """A file of several chunks has no single chunk id to match: it is read and hashed
    when its stem is the eval set's name (a copy under another name is not); the newest
    snapshot holding the digest wins; without a plan every file-tree snapshot is looked in."""
    from drkit.connectors.objectstore.registry import open_store
    from drkit.lineage.graph import EvalSetVersion
    from drkit.repository import KdfParams, Repository
    from drkit.repository.files import backup_path
    from drkit.repository.trees import list_files
    from drkit.workspace.rollback_closure import find_eval_sets

    src = tmp_path / "evals"
    rows = [{"id": f"q{i}", "prompt": "x" * 200 + str(i), "expected": str(i)} for i in range(14000)]
    src.mkdir()
    (src / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    big = load_eval_set(src / "big.jsonl").digest
    (src / "copy.jsonl").write_bytes((src / "big.jsonl").read_bytes())
    small = _write_eval_set(src / "small.jsonl", 2)
    repo = Repository.init(open_store((tmp_path / "repo").as_uri()), "pw", kdf=KdfParams.fast())
    try:
        first = backup_path(repo, src, component="golden")
        [(_, node)] = [(p, n) for p, n in list_files(repo, first) if p == "big.jsonl"]
        assert len(node["content"]) > 1  # the case under test: several chunks
        second = backup_path(repo, src, component="golden", parent=None)
        wanted = [EvalSetVersion("big", big, ()), EvalSetVersion("small", small, ())]
        found, unreadable = find_eval_sets(repo, None, wanted)
        assert {d: s.id for d, s in found.items()} == {big: second.id, small: second.id}
        assert unreadable == []
        # under another name only: several chunks are not hashed, so it is not found
        (src / "big.jsonl").unlink()
        third = backup_path(repo, src, component="other", parent=None)
        found, _ = find_eval_sets(repo, None, [EvalSetVersion("big", big, ())])
        assert found[big].id == second.id != third.id
    finally:
        repo.close()
