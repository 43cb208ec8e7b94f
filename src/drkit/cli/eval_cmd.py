"""``drkit eval``: run eval sets through the serving path, keep history, compare runs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.errors import CheckFailed, SecretMissing, UsageError

if TYPE_CHECKING:
    from drkit.workspace.eval_history import EvalPlace

eval_app = typer.Typer(
    name="eval",
    help="Eval sets through the serving path: run, history, show, compare.",
    no_args_is_help=True,
)

HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        envvar="DRKIT_EVAL_HISTORY",
        help="Directory of eval-run Parquet files "
        "(default: the plan's eval_results component, else <state_dir>/evals).",
        show_default=False,
    ),
]


def _place(plan: Path, history: Path | None) -> EvalPlace:
    from drkit.workspace.eval_history import eval_place

    return eval_place(plan, history)


@eval_app.command("run")
def run_cmd(
    eval_set: Annotated[Path, typer.Argument(help="The eval set (JSONL, docs/evals.md).")],
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="URL of a running drkit gateway (default with --route: the plan's "
            "serving.gateway host and port).",
        ),
    ] = None,
    route: Annotated[
        str | None, typer.Option("--route", help="The gateway route (model name) to evaluate.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Base URL of one provider target, bypassing the gateway."),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="Model name sent to --target.")] = "default",
    dialect: Annotated[
        str, typer.Option("--dialect", help="Wire dialect: openai or anthropic.")
    ] = "openai",
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Model version recorded with the run.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding the API key.")
    ] = None,
    judge_key_env: Annotated[
        str | None,
        typer.Option(
            "--judge-api-key-env",
            help="Environment variable with the gateway key for llm_judge routes "
            "(default: --api-key-env's when running through the gateway).",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Requests in flight at once.")
    ] = 8,
    pass_threshold: Annotated[
        float | None,
        typer.Option(
            "--pass-threshold",
            min=0.0,
            max=1.0,
            help="Mean score the run must reach to pass (default: the plan's quality.floor).",
        ),
    ] = None,
    max_errors: Annotated[
        int | None,
        typer.Option(
            "--max-errors",
            min=0,
            help="Examples that may fail to get an answer in a passing run "
            "(default: the plan's quality.max_errors, else 0).",
        ),
    ] = None,
    history: HistoryOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Run EVAL_SET through a gateway route or one target; store the run in eval history.

    Exit 1 when the run did not pass (more errors than --max-errors, or a mean score
    below the pass threshold)."""
    from rich.progress import Progress

    from drkit.evals.evalset import load_eval_set
    from drkit.evals.history import new_run_id, summarise, write_run
    from drkit.evals.judge import Judge
    from drkit.evals.runner import Endpoint, ExampleResult, run_examples
    from drkit.evals.scorers import JUDGED
    from drkit.evals.thresholds import resolve

    place = _place(plan, history)
    if gateway is None and route and target is None:
        gateway = place.gateway_url()
    if (gateway is None) == (target is None):
        raise UsageError(
            "give one of --route R (through the plan's gateway, or --gateway URL) or --target URL",
            hint="drkit eval run set.jsonl --gateway http://127.0.0.1:8787 --route chat",
        )
    if gateway is not None and not route:
        raise UsageError("--gateway needs --route", hint="--route NAME (the route's model name)")
    if gateway is not None and route:
        place.check_route(route)
    if dialect not in ("openai", "anthropic"):
        raise UsageError(f"--dialect {dialect!r}: must be openai or anthropic")
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise SecretMissing(f"--api-key-env {api_key_env}: the variable is not set")
    es = load_eval_set(eval_set)
    thresholds = resolve(
        place.plan,
        eval_set=es.name,
        file=eval_set,
        model_version=model_version,
        route=route if gateway else None,
        overrides={"floor": pass_threshold, "max_errors": max_errors},
    )
    if gateway is not None:
        base = gateway.rstrip("/") + ("/v1" if dialect == "openai" else "")
        ep = Endpoint(base, dialect, route or "", key, "route")  # type: ignore[arg-type]
    else:
        ep = Endpoint(target or "", dialect, model, key, "target")  # type: ignore[arg-type]
    judge = None
    if any(ex.scorer in JUDGED for ex in es.examples):
        judge_gw = gateway or place.gateway_url()
        if judge_gw is None:
            raise UsageError(
                f"{es.name} uses the llm_judge scorer, which asks a route of a gateway",
                hint="run with --gateway URL, or with a plan whose serving.gateway runs",
            )
        judge_key = key if gateway else None
        if judge_key_env:
            judge_key = os.environ.get(judge_key_env)
            if not judge_key:
                raise SecretMissing(f"--judge-api-key-env {judge_key_env}: the variable is not set")
        judge = Judge(judge_gw.rstrip("/") + "/v1", judge_key)
    from drkit.workspace.harness import harness_commit

    harness = harness_commit(place.plan)  # a harness path that is no git repository: exit 2
    from drkit.workspace.openlineage_out import openlineage_out

    run_id = new_run_id()
    lineage = openlineage_out(place.plan, place.state)
    lineage_run = lineage.eval_started(run_id, es.name, es.digest, model_version)
    started = time.time()
    t0 = time.perf_counter()
    with lineage_run.failing(), Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task(f"eval {es.name}", total=len(es))

        def tick(_: ExampleResult) -> None:
            bar.advance(task)

        results = asyncio.run(
            run_examples(es, ep, concurrency=concurrency, progress=tick, judge=judge)
        )
    duration = time.perf_counter() - t0
    path = place.history / f"{run_id}.parquet"
    summary = summarise(
        run_id,
        es.name,
        es.digest,
        results,
        route=route if gateway else None,
        target=target,
        model_version=model_version,
        started_at=started,
        duration_s=duration,
        path=str(path),
        thresholds=thresholds,
        history_component=place.component,
    )
    summary = dataclasses.replace(summary, **harness)
    write_run(place.history, summary, results)
    place.record(
        "eval.run",
        es.name,
        f"eval {es.name}: mean score {summary.mean_score:.3f} over {summary.n} "
        f"({'passed' if summary.passed else 'did not pass'})",
        summary.to_dict(),
    )
    lineage.eval_finished(lineage_run, summary.to_dict())
    data = {"schema_version": 1, **summary.to_dict()}
    floor = (
        f"floor {summary.pass_threshold:.3f} ({summary.pass_threshold_from})"
        if summary.pass_threshold is not None
        else "no quality floor (plan quality.floor or --pass-threshold): errors only"
    )
    emit(
        data,
        as_json,
        lambda out: out.print(
            f"run {run_id}: {es.name} ({es.digest[:12]}) n={summary.n} "
            f"mean score {summary.mean_score:.3f} errors {summary.errors} "
            f"tokens {summary.input_tokens}/{summary.output_tokens} in {duration:.2f}s: "
            f"{'passed' if summary.passed else 'FAILED'}; {floor}, "
            f"max errors {summary.max_errors}",
            markup=False,
        ),
    )
    if summary.errors > summary.max_errors:
        raise CheckFailed(
            f"{summary.errors} of {summary.n} examples of {es.name} failed to get an answer "
            f"(at most {summary.max_errors} allowed)",
            hint="check --gateway/--target and that the server is up, or raise --max-errors",
        )
    if not summary.passed:
        raise CheckFailed(
            f"{es.name}: mean score {summary.mean_score:.3f} is below the pass threshold "
            f"{summary.pass_threshold:.3f} ({summary.pass_threshold_from})"
        )


@eval_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    history: HistoryOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Show one eval run: its summary and per-example scores."""
    from drkit.evals.history import read_rows, read_summary, run_path

    p = run_path(_place(plan, history).history, run)
    summary, rows = read_summary(p), read_rows(p)
    data = {"schema_version": 1, **summary.to_dict(), "examples": rows}

    def render(out: Console) -> None:
        out.print(
            f"run {summary.run_id}: {summary.eval_set} mean {summary.mean_score:.3f} "
            f"{'passed' if summary.passed else 'FAILED'}",
            markup=False,
        )
        if summary.harness_commit:
            dirty = " (uncommitted changes)" if summary.harness_dirty else ""
            out.print(f"  harness {summary.harness} at {summary.harness_commit[:12]}{dirty}")
        for r in rows:
            out.print(
                f"  {r['example_id']}: {r['score']:.2f} via {r['served_by']} "
                f"{r['latency_s'] * 1000:.0f} ms {r['error'] or ''}",
                markup=False,
            )

    emit(data, as_json, render)


@eval_app.command("history")
def history_cmd(
    eval_set: Annotated[
        str | None, typer.Option("--eval-set", help="Only runs of this eval set (name).")
    ] = None,
    route: Annotated[str | None, typer.Option("--route", help="Only runs of this route.")] = None,
    history: HistoryOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """List eval runs, oldest first."""
    from drkit.evals.history import list_runs

    runs = [
        s
        for s in list_runs(_place(plan, history).history)
        if (eval_set is None or s.eval_set == eval_set) and (route is None or s.route == route)
    ]
    data = {"schema_version": 1, "runs": [s.to_dict() for s in runs]}

    def render(out: Console) -> None:
        for s in runs:
            out.print(
                f"{s.run_id}  {s.eval_set} {s.eval_set_digest[:12]}  "
                f"{s.route or s.target}  n={s.n} mean {s.mean_score:.3f} "
                f"{'passed' if s.passed else 'FAILED'}",
                markup=False,
            )

    emit(data, as_json, render)


@eval_app.command("compare")
def compare_cmd(
    baseline: Annotated[str, typer.Argument(help="The baseline run id.")],
    candidate: Annotated[str, typer.Argument(help="The candidate run id.")],
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha", help="Significance level (default: the plan's quality.alpha, else 0.05)."
        ),
    ] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop",
            help="Largest tolerated drop of the mean score "
            "(default: the plan's quality.max_drop, else 0).",
        ),
    ] = None,
    allow_harness_change: Annotated[
        bool,
        typer.Option(
            "--allow-harness-change",
            help="Compare runs that recorded different eval harness commits "
            "(refused by default: exit 2).",
        ),
    ] = False,
    history: HistoryOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Paired test of CANDIDATE against BASELINE; exit 1 on a significant regression."""
    from drkit.evals.compare import compare
    from drkit.evals.history import read_rows, read_summary, run_path
    from drkit.evals.thresholds import resolve

    place = _place(plan, history)
    base_path, cand_path = run_path(place.history, baseline), run_path(place.history, candidate)
    run = read_summary(cand_path)
    t = resolve(
        place.plan,
        eval_set=run.eval_set,
        model_version=run.model_version,
        route=run.route,
        overrides={"alpha": alpha, "max_drop": max_drop},
    )
    c = compare(
        read_rows(base_path),
        read_rows(cand_path),
        alpha=t.alpha,
        max_drop=t.max_drop,
        baseline_id=baseline,
        candidate_id=candidate,
        baseline_harness=read_summary(base_path).harness_commit,
        candidate_harness=run.harness_commit,
        allow_harness_change=allow_harness_change,
    )
    harness_note = ""
    if c.baseline_harness_commit != c.candidate_harness_commit:  # --allow-harness-change
        harness_note = (
            f"; harness changed ({(c.baseline_harness_commit or 'none')[:12]} -> "
            f"{(c.candidate_harness_commit or 'none')[:12]}), allowed"
        )
    data = {
        "schema_version": 1,
        **c.to_dict(),
        "thresholds_from": {k: t.sources[k] for k in ("alpha", "max_drop")},
    }
    emit(
        data,
        as_json,
        lambda out: out.print(
            f"{c.verdict}: {c.candidate_mean:.3f} vs {c.baseline_mean:.3f} "
            f"(effect {c.effect:+.3f}, {100 * (1 - c.alpha):.0f}% CI "
            f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]) "
            f"{c.test} p={c.p_value:.4g} n={c.n} losses {c.losses} wins {c.wins}; "
            f"smallest detectable drop at this size {c.min_detectable_drop:.3f}" + harness_note,
            markup=False,
        ),
    )
    if c.regressed:
        raise CheckFailed(f"{candidate} regressed against {baseline} (p={c.p_value:.4g})")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
