"""``drkit eval``: run eval sets through the serving path, keep history, compare runs."""

from __future__ import annotations

import os
from collections.abc import Callable
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
def run_cmd(  # long: typer options, one per line; the body is under 70 lines
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

    from drkit.evals.evalset import EvalSet
    from drkit.evals.runner import ExampleResult
    from drkit.workspace.eval_run import EvalRequest, run_eval

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
    key = _env_secret("--api-key-env", api_key_env)
    request = EvalRequest(
        eval_set,
        gateway=gateway,
        route=route,
        target=target,
        model=model,
        dialect=dialect,  # type: ignore[arg-type]
        model_version=model_version,
        api_key=key,
        judge_key=_env_secret("--judge-api-key-env", judge_key_env),
        concurrency=concurrency,
        overrides={"floor": pass_threshold, "max_errors": max_errors},
    )
    with Progress(transient=True, disable=as_json) as bar:

        def started(es: EvalSet) -> Callable[[ExampleResult], None]:
            task = bar.add_task(f"eval {es.name}", total=len(es))
            return lambda _: bar.advance(task)

        outcome = run_eval(place, request, started)
    es, summary = outcome.eval_set, outcome.summary
    run_id, duration = summary.run_id, summary.duration_s
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
    failure = outcome.failure()
    if failure is not None:
        raise failure


def _env_secret(option: str, env: str | None) -> str | None:
    if not env:
        return None
    value = os.environ.get(env)
    if not value:
        raise SecretMissing(f"{option} {env}: the variable is not set")
    return value


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
