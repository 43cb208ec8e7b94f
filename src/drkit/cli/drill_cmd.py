"""``drkit drill run|list|history`` and ``drkit gameday``: thin shells over the workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, console, emit, err_console
from drkit.drills.engine import DrillInterrupted
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.scenarios import SCENARIOS, DrillOptions
from drkit.errors import CheckFailed
from drkit.types import format_duration
from drkit.workspace import Workspace

drill_app = typer.Typer(
    name="drill", help="Run incident drills and read their history.", no_args_is_help=True
)

SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the injected faults.")]
_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "aborted": "yellow"}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0s"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else format_duration(round(seconds, 1))


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _step_printer(json_: bool) -> Any:
    def show(step: StepRecord) -> None:
        if json_:
            return
        colour = "green" if step.status == "ok" else "red"
        took = _fmt(step.ended_at - step.started_at)
        line = f"  {step.phase:<12} [{colour}]{step.status:<6}[/] {step.name} [dim]({took})[/]"
        if step.detail:
            line += f"\n               [dim]{step.detail}[/]"
        err_console.print(line, highlight=False)

    return show


def render_journal(out: Console, journal: Journal, path: str | None = None) -> None:
    style = _VERDICT_STYLE.get(journal.verdict, "bold red")
    out.print(Text.assemble((journal.scenario, "bold"), "  ", (journal.verdict.upper(), style)))
    table = Table(show_header=True, header_style="bold")
    for col in ("measure", "measured", "target", "met"):
        table.add_column(col)
    for label, m in (("RTO", journal.rto), ("RPO", journal.rpo), ("detection", journal.detection)):
        met = "-" if m.met is None else ("yes" if m.met else "NO")
        table.add_row(label, _fmt(m.measured_s), _fmt(m.target_s), met)
    out.print(table)
    if journal.metrics:
        out.print(
            "  " + ", ".join(f"{k}={v:g}" for k, v in sorted(journal.metrics.items())),
            soft_wrap=True,
        )
    for reason in journal.reasons:
        out.print(Text(f"  reason: {reason}"), soft_wrap=True)
    if path:
        out.print(Text(f"  journal: {path}", style="dim"), soft_wrap=True)


@drill_app.command("run")
def run_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name (`drkit drill list`).")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="Route or component to drill (default: the first)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region to lose (region-outage).")
    ] = None,
    seed: SeedOption = 0,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Run one drill; exit 1 when it fails its targets (the reasons say why)."""
    ws = Workspace.load(plan)
    try:
        if not json_:
            err_console.print(f"drill {scenario} on plan {ws.plan.name!r} (seed {seed})")
        try:
            journal, path = ws.run_drill(
                scenario,
                DrillOptions(seed=seed, subject=subject, region=region),
                on_step=_step_printer(json_),
            )
        except DrillInterrupted as exc:
            err_console.print("interrupted; rollback ran")
            stopped = exc.journal
            emit(stopped.model_dump(mode="json"), json_, lambda o: render_journal(o, stopped))
            raise typer.Exit(130) from None
    finally:
        ws.close()
    emit(
        {**journal.model_dump(mode="json"), "journal_path": str(path)},
        json_,
        lambda out: render_journal(out, journal, str(path)),
    )
    if journal.verdict != "pass":
        raise CheckFailed(
            f"drill {scenario} {journal.verdict}: " + "; ".join(journal.reasons or ["no reason"]),
            hint=f"read the journal {path}",
        )


@drill_app.command("list")
def list_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """The scenarios and whether this plan can run them (and why not)."""
    ws = Workspace.load(plan)
    rows: list[dict[str, Any]] = []
    for s in SCENARIOS.values():
        why = s.why_not(ws.plan)
        rows.append(
            {"scenario": s.name, "runnable": why is None, "why_not": why, "summary": s.summary}
        )

    def render(out: Console) -> None:
        table = Table(show_header=True, header_style="bold")
        for col in ("scenario", "runnable", "what it does / why not"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                r["scenario"],
                "[green]yes[/]" if r["runnable"] else "[yellow]no[/]",
                r["summary"] if r["runnable"] else str(r["why_not"]),
            )
        out.print(table)

    emit(rows, json_, render)


@drill_app.command("history")
def history_cmd(
    scenario: Annotated[str | None, typer.Option("--scenario", help="Only this scenario.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N drills.")] = 20,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Past drills from drkit's state: when, verdict, measured RTO/RPO against targets."""
    ws = Workspace.load(plan)
    try:
        records = ws.drill_history(scenario)[-limit:] if limit > 0 else []
    finally:
        ws.close()
    rows = []
    for rec in records:
        j = rec.journal
        rows.append(
            {
                "id": rec.id,
                "at": rec.at,
                "scenario": rec.scenario,
                "verdict": rec.verdict,
                "rto_s": j["rto"]["measured_s"],
                "rto_target_s": j["rto"]["target_s"],
                "rpo_s": j["rpo"]["measured_s"],
                "rpo_target_s": j["rpo"]["target_s"],
                "reasons": j.get("reasons", []),
            }
        )

    def render(out: Console) -> None:
        if not rows:
            out.print("no drills recorded yet: run `drkit drill run SCENARIO`")
            return
        table = Table(show_header=True, header_style="bold")
        for col in ("when", "scenario", "verdict", "RTO / target", "RPO / target", "id"):
            table.add_column(col)
        for r in rows:
            style = _VERDICT_STYLE.get(r["verdict"], "bold red")
            table.add_row(
                _when(r["at"]),
                r["scenario"],
                Text(r["verdict"], style=style),
                f"{_fmt(r['rto_s'])} / {_fmt(r['rto_target_s'])}",
                f"{_fmt(r['rpo_s'])} / {_fmt(r['rpo_target_s'])}",
                Text(r["id"], style="dim"),
            )
        out.print(table)

    emit(rows, json_, render)


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")


__all__ = ["console", "register"]
