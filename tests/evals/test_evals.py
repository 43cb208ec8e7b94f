"""Eval DR end to end: eval sets, runs against the real simulator, history, the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.errors import PlanError, UsageError
from drkit.evals import compare, load_eval_set, read_rows
from drkit.state.store import StateStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _write_set(path: Path, n: int = 40) -> Path:
    lines = [
        json.dumps(
            {
                "id": f"q{i}",
                "prompt": f"answer {i} capital" if i % 2 else f"answer {i}",
                "expected": f"answer {i}",
                "scorer": "contains",
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sim() -> object:
    s = ProviderSimulator("openai", seed=3, mode="echo", api_key="sk-eval-test-key")
    s.start()
    yield s
    s.stop()


def test_malformed_sets_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x", "expected": "x"}\n{"id": \n')
    with pytest.raises(PlanError, match=r"bad.jsonl:2: bad JSON"):
        load_eval_set(bad)
    bad.write_text('{"id": "a", "prompt": "x", "expected": "x", "scorer": "nope"}\n')
    with pytest.raises(PlanError, match=r"bad.jsonl:1: scorer: unknown scorer 'nope'"):
        load_eval_set(bad)
    bad.write_text('\n{"id": "a", "prompt": "x"}\n')
    with pytest.raises(PlanError, match=r"bad.jsonl:2: expected: missing"):
        load_eval_set(bad)
    code, _, err = cli(capsys, "eval", "run", str(bad), "--target", "http://127.0.0.1:1")
    assert code == 2
    assert "bad.jsonl:2: expected" in err


def test_version_is_the_content_digest(tmp_path: Path) -> None:
    a = load_eval_set(_write_set(tmp_path / "a.jsonl"))
    b = load_eval_set(_write_set(tmp_path / "b.jsonl"))
    assert a.digest == b.digest
    assert len(a.digest) == 64
    c = load_eval_set(_write_set(tmp_path / "c.jsonl", n=41))
    assert c.digest != a.digest


def test_run_degrade_compare(
    tmp_path: Path,
    sim: ProviderSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    es = _write_set(tmp_path / "caps.jsonl")
    hist = tmp_path / "hist"
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    base_args = ["eval", "run", str(es), "--target", sim.base_url, "--history", str(hist)]
    base_args += ["--api-key-env", "EVAL_TEST_KEY", "--json"]
    code, out1, err1 = cli(capsys, *base_args)
    assert code == 0, err1
    s1 = json.loads(out1)
    assert s1["mean_score"] == 1.0
    assert s1["n"] == 40
    assert s1["input_tokens"] > 0

    sim.set_faults({"kind": "wrong_answer", "topic": "capital"})
    s2 = json.loads(cli(capsys, *base_args)[1])
    assert s2["mean_score"] == 0.5  # the odd examples mention "capital"

    rows = pq.read_table(hist / f"{s2['run_id']}.parquet").to_pylist()
    assert len(rows) == 40
    assert {r["score"] for r in rows} == {0.0, 1.0}
    events = StateStore(tmp_path / "state.db").events(kind="eval.run")
    assert [e.data["run_id"] for e in events] == [s1["run_id"], s2["run_id"]]

    h = ["--history", str(hist)]
    code, cmp_out, _ = cli(capsys, "eval", "compare", s1["run_id"], s2["run_id"], *h, "--json")
    assert code == 1
    out = json.loads(cmp_out)
    assert out["verdict"] == "regressed"
    assert out["p_value"] < 0.001
    assert out["losses"] == 20

    code, same, _ = cli(capsys, "eval", "compare", s1["run_id"], s1["run_id"], *h)
    assert code == 0
    assert "no significant change" in same

    runs = json.loads(cli(capsys, "eval", "history", *h, "--json")[1])["runs"]
    assert [r["run_id"] for r in runs] == [s1["run_id"], s2["run_id"]]


def test_compare_refuses_across_versions() -> None:
    a = [{"example_id": "1", "score": 1.0, "eval_set_digest": "aa"}]
    b = [{"example_id": "1", "score": 1.0, "eval_set_digest": "bb"}]
    with pytest.raises(UsageError, match="different eval-set versions"):
        compare(a, b)


def test_no_change_not_flagged_over_seeds() -> None:
    import random

    alarms = 0
    for seed in range(200):
        rng = random.Random(seed)
        rows = [
            [
                {"example_id": str(i), "score": float(rng.random() < 0.7), "eval_set_digest": "d"}
                for i in range(60)
            ]
            for _ in range(2)
        ]
        alarms += compare(rows[0], rows[1], alpha=0.05).regressed
    assert alarms / 200 <= 0.05
    assert read_rows  # the public API re-exports the history reader


def test_promote_gate_is_the_paired_test_of_real_eval_runs(
    sim: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`drkit model promote` decides with drkit.evals' paired test over the per-example rows
    of `drkit eval run --model-version MODEL@VERSION` (one definition of a regression)."""
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    es = _write_set(tmp_path / "caps.jsonl")
    run = ["eval", "run", str(es), "--target", sim.base_url, "--history", str(tmp_path / "h")]
    run += ["--api-key-env", "EVAL_TEST_KEY", "--json"]
    for v in ("1", "2", "3"):
        assert cli(capsys, "model", "register", "assistant", v)[0] == 0
    assert cli(capsys, *run, "--model-version", "assistant@1")[0] == 0
    alias = ["model", "alias", "set", "assistant", "champion", "1", "--reason", "first"]
    assert cli(capsys, *alias)[0] == 0
    sim.set_faults({"kind": "wrong_answer", "topic": "capital"})
    assert cli(capsys, *run, "--model-version", "assistant@2")[0] == 0
    code, out, _ = cli(capsys, "model", "promote", "assistant", "2", "--to", "champion", "--json")
    assert code == 1
    refused = json.loads(out)
    assert refused["promoted"] is False
    assert "McNemar" in refused["gate"]["reason"] or "p=" in refused["gate"]["reason"]
    assert refused["gate"]["metrics"]["mean_score"]["baseline"] == 1.0
    assert refused["gate"]["metrics"]["mean_score"]["candidate"] == 0.5
    sim.set_faults()
    assert cli(capsys, *run, "--model-version", "assistant@3")[0] == 0
    code, out, err = cli(capsys, "model", "promote", "assistant", "3", "--to", "champion", "--json")
    assert code == 0, err
    assert json.loads(out)["change"]["to"] == "3"
