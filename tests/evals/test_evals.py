"""Eval DR end to end: eval sets, runs against the real simulator, history, the gate."""

from __future__ import annotations

import asyncio
import json
import os
import signal
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


def test_rollback_over_real_eval_runs_picks_the_version_that_passed(
    sim: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every eval run records a verdict (`passed`, `pass_threshold`); `drkit eval run` exits
    1 on a run below the threshold, and `drkit model rollback` skips a version whose run
    did not pass for the one whose run did."""
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    es = _write_set(tmp_path / "caps.jsonl")
    run = ["eval", "run", str(es), "--target", sim.base_url, "--history", str(tmp_path / "h")]
    run += ["--api-key-env", "EVAL_TEST_KEY", "--pass-threshold", "0.9", "--json"]
    for v in ("1", "2", "3"):
        assert cli(capsys, "model", "register", "assistant", v)[0] == 0
    code, out, _ = cli(capsys, *run, "--model-version", "assistant@1")
    good = json.loads(out)
    assert (code, good["passed"], good["pass_threshold"]) == (0, True, 0.9)
    assert good["pass_threshold_from"] == "command line"
    assert good["max_errors"] == 0
    sim.set_faults({"kind": "wrong_answer", "topic": "capital"})
    code, out, _ = cli(capsys, *run, "--model-version", "assistant@2")
    bad = json.loads(out)
    assert (code, bad["passed"], bad["mean_score"]) == (1, False, 0.5)
    sim.set_faults()
    alias = ["model", "alias", "set", "assistant", "champion", "3", "--reason", "shipped"]
    assert cli(capsys, *alias)[0] == 0
    code, out, err = cli(capsys, "model", "rollback", "assistant", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["change"]["to"] == "1"
    assert [s["candidate"] for s in done["skipped"]] == ["2"]
    assert done["gate"]["eval_runs"] == [
        str(e.id)
        for e in StateStore(tmp_path / "state.db").events(kind="eval.run")
        if e.data["run_id"] == good["run_id"]
    ]


def test_max_errors_decides_instead_of_all_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    from tests.servers import free_port

    es = _write_set(tmp_path / "caps.jsonl", n=3)
    dead = f"http://127.0.0.1:{free_port()}"
    run = ["eval", "run", str(es), "--target", dead, "--history", str(tmp_path / "h"), "--json"]
    code, out, err = cli(capsys, *run)
    assert code == 1
    assert "3 of 3 examples" in err
    assert json.loads(out)["passed"] is False
    code, out, _ = cli(capsys, *run, "--max-errors", "3")
    assert (code, json.loads(out)["passed"], json.loads(out)["max_errors"]) == (0, True, 3)


def test_thresholds_come_from_the_most_specific_place_in_the_plan(tmp_path: Path) -> None:
    from drkit.evals.thresholds import resolve
    from drkit.plan.loader import load_plan

    assert main(["init", str(tmp_path)]) == 0
    plan_file = tmp_path / "drkit.yaml"
    text = plan_file.read_text()
    text = text.replace(
        "critical: {rto: 5m, rpo: 1h, multi_region: true}",
        "critical: {rto: 5m, rpo: 1h, multi_region: true, "
        "quality: {floor: 0.8, alpha: 0.01, max_errors: 2}}",
    )
    assert "      quality: {floor: 0.9}\n" in text  # the starter's route floor
    text = text.replace("      quality: {floor: 0.9}\n", "      quality: {floor: 0.95}\n")
    plan_file.write_text(text)
    plan = load_plan(plan_file)
    t = resolve(plan, eval_set="golden", route="assistant")
    assert (t.floor, t.alpha, t.max_errors, t.max_drop) == (0.95, 0.01, 2, 0.0)
    assert t.sources["floor"] == "serving.routes.assistant.quality"
    assert t.sources["alpha"] == "tiers.critical.quality"
    assert t.sources["max_drop"] == "default"
    t = resolve(plan, eval_set="golden", route="assistant", overrides={"floor": 0.5})
    assert (t.floor, t.sources["floor"]) == (0.5, "command line")
    assert resolve(plan, eval_set="golden").floor is None
    assert t.verdict(0.5, 2)
    assert not t.verdict(0.49, 0)
    assert not t.verdict(1.0, 3)


def test_history_lives_in_the_plans_eval_results_and_is_backed_up(
    sim: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --history or $DRKIT_STATE: the run goes to the plan's eval_results component
    and is indexed in the plan's state; `drkit backup` puts it in the repository, and a
    restore gives back a Parquet file pyarrow reads."""
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    monkeypatch.setenv("DRKIT_PASSWORD", "eval-history-pw")
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    es = _write_set(tmp_path / "caps.jsonl", n=4)
    run = ["eval", "run", str(es), "--target", sim.base_url, "--api-key-env", "EVAL_TEST_KEY"]
    code, out, err = cli(capsys, *run, "--json")
    assert code == 0, err
    s = json.loads(out)
    results = tmp_path / "evals" / "results"
    assert Path(s["path"]) == results / f"{s['run_id']}.parquet"
    assert s["history_component"] == "eval-history"
    events = StateStore(tmp_path / ".drkit" / "state.db").events(kind="eval.run")
    assert [e.data["run_id"] for e in events] == [s["run_id"]]
    listed = json.loads(cli(capsys, "eval", "history", "--json")[1])["runs"]
    assert [r["run_id"] for r in listed] == [s["run_id"]]
    shown = json.loads(cli(capsys, "eval", "show", s["run_id"][:10], "--json")[1])
    assert len(shown["examples"]) == 4
    assert f"{s['run_id']}  caps" in cli(capsys, "eval", "history")[1]
    assert "mean 1.000 passed" in cli(capsys, "eval", "show", s["run_id"])[1]

    assert cli(capsys, "repo", "init")[0] == 0
    code, _, err = cli(capsys, "backup", "eval-history")
    assert code == 0, err
    restored = tmp_path / "restored"
    code, _, err = cli(capsys, "restore", "latest", "-c", "eval-history", "--to", str(restored))
    assert code == 0, err
    rows = pq.read_table(restored / f"{s['run_id']}.parquet").to_pylist()
    assert [r["example_id"] for r in rows] == ["q0", "q1", "q2", "q3"]


def test_route_runs_through_the_plans_gateway_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.servers import free_port

    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path)]) == 0
    port = free_port()
    plan = tmp_path / "drkit.yaml"
    plan.write_text(
        plan.read_text().replace("serving:\n", f"serving:\n  gateway: {{port: {port}}}\n")
    )
    es = _write_set(tmp_path / "caps.jsonl", n=2)
    code, _, err = cli(capsys, "eval", "run", str(es), "--route", "nope")
    assert code == 2
    assert "no such route" in err
    assert "assistant" in err
    # the plan's gateway (nothing listens on its port): every example errors, over there
    code, out, _ = cli(capsys, "eval", "run", str(es), "--route", "assistant", "--json")
    assert code == 1
    run = json.loads(out)
    assert (run["route"], run["errors"], run["target"]) == ("assistant", 2, None)
    rows = pq.read_table(run["path"]).to_pylist()
    assert {r["error"] for r in rows} == {"transport: ConnectError"}


def test_an_interrupted_run_leaves_no_history_entry(
    sim: ProviderSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in the middle of a run: no Parquet file (not even a temporary one), no
    eval.run event; the next run is whole."""
    import drkit.evals.runner as runner

    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-eval-test-key")
    es = _write_set(tmp_path / "caps.jsonl", n=10)
    hist = tmp_path / "hist"
    run = ["eval", "run", str(es), "--target", sim.base_url, "--history", str(hist)]
    run += ["--api-key-env", "EVAL_TEST_KEY", "--concurrency", "1"]
    real_one = runner._one
    calls = {"n": 0}

    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:  # the fifth example: the user presses Ctrl-C
            # a real SIGINT, as the terminal sends it: asyncio.run cancels the run's
            # tasks and raises KeyboardInterrupt (a KeyboardInterrupt raised inside a task
            # instead leaves that task's exception unretrieved, logged when it is collected)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)
        return await real_one(*args, **kwargs)

    monkeypatch.setattr(runner, "_one", interrupted)
    # Python's own handler, as in a terminal: a process started in the background by a
    # non-interactive shell inherits SIGINT ignored, and asyncio.run then leaves it so
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, _, _ = cli(capsys, *run)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert calls["n"] == 5
    assert not hist.exists() or list(hist.iterdir()) == []
    assert StateStore(tmp_path / "state.db").events(kind="eval.run") == []
    monkeypatch.setattr(runner, "_one", real_one)
    assert cli(capsys, *run)[0] == 0
    assert len(list(hist.glob("*.parquet"))) == 1


def test_min_detectable_drop_is_the_exact_mcnemar_bound() -> None:
    from scipy import stats

    from drkit.plan.quality import min_detectable_drop

    def by_scipy(n: int, alpha: float) -> float:
        for k in range(1, n + 1):
            if stats.binomtest(k, k, 0.5).pvalue < alpha:
                return k / n
        return 1.0

    for n in (1, 5, 6, 20, 40, 200):
        for alpha in (0.2, 0.1, 0.05, 0.03125, 0.01, 0.001):
            assert min_detectable_drop(n, alpha) == by_scipy(n, alpha), (n, alpha)


def test_lint_quality_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DR403 warns about a critical route with no quality floor, or with a floor that
    neither a canary nor a scheduled eval watches; DR404 warns when a gate's eval set is
    too small for its tolerated drop, with both numbers."""
    assert main(["init", str(tmp_path)]) == 0
    plan = tmp_path / "drkit.yaml"
    (tmp_path / "evals" / "golden").mkdir(parents=True, exist_ok=True)
    _write_set(tmp_path / "evals" / "golden" / "golden.jsonl", n=40)
    capsys.readouterr()

    def check(text: str) -> list[dict[str, Any]]:
        plan.write_text(text)
        assert main(["plan", "check", "--plan", str(plan), "--json"]) == 0  # warnings only
        found = json.loads(capsys.readouterr().out)["violations"]
        return [v for v in found if v["rule"] in ("DR403", "DR404")]

    starter = plan.read_text()
    assert check(starter) == []  # a floor on the tier, a scheduled eval of the route
    scheduled = "  scheduled_evals:\n    - {eval_set: ./evals/golden/golden.jsonl, route: assistant"
    assert scheduled in starter
    unwatched = starter.replace(scheduled, "  scheduled_evals: []\n    #")
    (dr403,) = check(unwatched)
    assert dr403["severity"] == "warning"
    assert (
        "'assistant' has a quality floor (0.9) but neither a quality canary nor a "
        in (dr403["message"])
    )
    assert "testing.scheduled_evals" in dr403["hint"]
    floorless = starter.replace("      quality: {floor: 0.9}\n", "")
    (dr403,) = check(floorless)
    assert "'assistant' has no quality floor" in dr403["message"]
    assert "quality: {floor: 0.9}" in dr403["hint"]
    # the floor may come from the scheduled eval's set itself
    own = "path: ./evals/golden, tier: standard, quality: {floor: 0.8},"
    assert check(floorless.replace("path: ./evals/golden, tier: standard,", own)) == []
    # a tier's floor does not reach a scheduled eval of a set with a tier of its own
    tiered = floorless.replace(
        "critical: {rto: 5m, rpo: 1h, multi_region: true}",
        "critical: {rto: 5m, rpo: 1h, multi_region: true, quality: {floor: 0.9}}",
    )
    (dr403,) = check(tiered)
    assert (
        "its scheduled eval of './evals/golden/golden.jsonl' runs with no quality floor"
        in (dr403["message"])
    )
    text = starter.replace(
        "path: ./evals/golden, tier: standard,",
        "path: ./evals/golden, tier: standard, quality: {max_drop: 0.05},",
    )
    found = check(text)
    (dr404,) = [v for v in found if v["rule"] == "DR404"]
    assert "has 40 examples" in dr404["message"]
    assert "0.150" in dr404["message"]  # 6 of 40 at alpha 0.05
    assert "tolerated drop 0.05" in dr404["message"]
    assert "at least 120 examples" in dr404["hint"]
