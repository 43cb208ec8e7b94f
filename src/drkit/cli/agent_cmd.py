"""``drkit agent run|status`` and ``drkit rpo``: thin shells over :mod:`drkit.agent`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit, err_console
from drkit.errors import CheckFailed, UsageError

agent_app = typer.Typer(help="The always-on agent: runs the plan's cadence.", no_args_is_help=True)


def _duration(option: str, text: str | None) -> float | None:
    from drkit.types import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: {exc}", hint=f"e.g. {option} 30s") from exc


def _when(t: float | None) -> str:
    return "-" if t is None else f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S}Z"


@agent_app.command("run", epilog="Example: drkit agent run --listen 127.0.0.1:9464 --jitter 30s")
def run_cmd(  # long: typer options, one per line; the body is under 75 lines
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (1 if a job failed).")
    ] = False,
    max_runtime: Annotated[
        str | None, typer.Option("--max-runtime", help="Stop after this long, e.g. 10m.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Jobs that may run at once.")
    ] = 2,
    jitter: Annotated[
        str, typer.Option("--jitter", help="Up to this much random delay per run, e.g. 30s.")
    ] = "0s",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the jitter.")] = 0,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Retries of a transient failure.")
    ] = 3,
    grace: Annotated[
        str, typer.Option("--grace", help="On SIGTERM/SIGINT: how long running jobs may finish.")
    ] = "30s",
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="Serve /metrics and /healthz on HOST:PORT (port 0: any)."),
    ] = None,
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook",
            help="POST alarms (rpo.breach, job.overdue, job.failed) here, signed with"
            " HMAC-SHA256 of $DRKIT_WEBHOOK_SECRET; repeatable.",
        ),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Run the plan's cadence: snapshots, copies, restore tests, retention.

    Exit 0 on a stop (SIGTERM/SIGINT, --max-runtime) once running jobs finished; with
    --once, 1 when a job failed; 2 on bad input, before any job starts.
    """
    from drkit.agent.runner import AgentOptions, run_agent
    from drkit.agent.scheduler import Policy

    options = AgentOptions(
        once=once,
        max_runtime=_duration("--max-runtime", max_runtime),
        grace=_duration("--grace", grace) or 0.0,
        policy=Policy(
            concurrency=concurrency,
            jitter=_duration("--jitter", jitter) or 0.0,
            seed=seed,
            retries=retries,
        ),
        listen=listen,
        webhooks=list(webhook or []),
    )

    def ready(report: Any) -> None:
        if report.listen:
            err_console.print(
                f"agent: /metrics and /healthz on http://{report.listen}",
                markup=False,
                emoji=False,
                soft_wrap=True,
            )
        if report.endpoint_note:
            err_console.print(
                f"agent: {report.endpoint_note}", markup=False, emoji=False, soft_wrap=True
            )

    def ran(run: Any) -> None:
        if not json_:
            what = run.summary if run.status == "ok" else f"FAILED: {run.error}"
            err_console.print(
                f"{_when(run.ended)} {run.job}: {what} ({run.duration_s:.2f}s, "
                f"{run.attempts} attempt(s))",
                markup=False,
                emoji=False,
                soft_wrap=True,
            )

    report = run_agent(plan, options, on_run=ran, on_ready=ready)

    def render(out: Console) -> None:
        out.print(
            f"agent stopped ({report.stopped_by}): {len(report.runs)} run(s), "
            f"{len(report.failed)} failed"
            + (
                f"; still running at exit: {', '.join(report.abandoned)}"
                if report.abandoned
                else ""
            )
            + (
                f"; not run (waiting on a failed job): {', '.join(report.skipped)}"
                if report.skipped
                else ""
            )
        )
        if once and not report.runs:
            out.print("nothing was due")

    emit(report.to_json(), json_, render)
    if report.abandoned:
        raise typer.Exit(1)
    if once and (report.failed or report.skipped):
        raise typer.Exit(1)


@agent_app.command("status", epilog="Example: drkit agent status --json")
def status_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """Next and last run of every job of the plan's cadence, with results."""
    from drkit.agent.runner import agent_status, leader_status

    rows = agent_status(plan)
    lease = leader_status(plan)

    def render(out: Console) -> None:
        if lease is None:
            out.print("leader: none (no agent has run on this state)")
        elif lease["expires_in_s"] > 0:
            out.print(
                f"leader: {lease['holder']} (token {lease['token']}, lease renewed within "
                f"{lease['expires_in_s']:.0f}s)",
                markup=False,
            )
        else:
            out.print(f"leader: none now (the last, {lease['holder']}, let its lease expire)")
        table = Table("job", "every", "last run", "result", "last success", "next run")
        for r in rows:
            last = r["last"]
            result = "-" if last is None else last["status"]
            if last is not None and last["status"] != "ok":
                result += f": {last['error']}"
            table.add_row(
                r["job"],
                r["every"],
                _when(last["started"] if last else None),
                result,
                _when(r["last_success"]),
                _when(r["next_due"]) + (" (overdue)" if r["overdue"] else ""),
            )
        out.print(table)

    leader = None
    if lease is not None and lease["expires_in_s"] > 0:
        leader = lease["holder"]
    emit({"leader": leader, "lease": lease, "jobs": rows}, json_, render)


def rpo_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """Measured vs target RPO per component and region; exit 1 when one exceeds it."""
    from drkit.agent.rpo import measure_rpo
    from drkit.types import format_duration
    from drkit.workspace.workspace import Workspace

    with Workspace.load(plan) as ws:
        rows = measure_rpo(ws)
    if not rows:
        raise UsageError(
            "the plan has no component with a tier that drkit backs up: no RPO to measure",
            hint="give components a tier (and a path) in the plan",
        )

    def fmt(s: float | None) -> str:
        return "none" if s is None else format_duration(round(s))

    def render(out: Console) -> None:
        table = Table(
            "component", "repository", "region", "measured", "verified", "computed", "target", ""
        )
        for m in rows:
            table.add_row(
                m.component,
                m.repository,
                m.region,
                fmt(m.newest_s),
                fmt(m.verified_s),
                fmt(m.computed_s),
                format_duration(m.target_s),
                "EXCEEDED" + (f" ({m.error})" if m.error else "") if m.exceeded else "ok",
            )
        out.print(table)

    emit([m.to_json() for m in rows], json_, render)
    bad = [m for m in rows if m.exceeded]
    if bad:
        raise CheckFailed(
            f"{len(bad)} measured RPO(s) exceed their target, first: {bad[0].component} in "
            f"{bad[0].repository} ({fmt(bad[0].newest_s)} vs {format_duration(bad[0].target_s)})",
            hint="back it up and copy it: `drkit agent run` keeps the cadence",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
    app.command("rpo", epilog="Example: drkit rpo --json")(rpo_cmd)
