"""``drkit drill run|list|history`` and ``drkit gameday``: thin shells over the workspace."""

# long: the drill group's commands (run with its live options, abort, list, history,
# gameday) share their option parsing and rendering

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from drkit.cli.common import (
    DEFAULT_PLAN,
    JsonOption,
    PlanOption,
    console,
    emit,
    err_console,
    rfc3339,
)
from drkit.errors import CheckFailed
from drkit.extras import require as require_extra

if TYPE_CHECKING:  # drills and the workspace load when a command runs, not at CLI start-up
    from drkit.drills.journal import Journal, Measurement, StepRecord
    from drkit.workspace import GameDay

drill_app = typer.Typer(
    name="drill", help="Run incident drills and read their history.", no_args_is_help=True
)

SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the injected faults.")]
#: ``--live in-place``: data-corruption damages and repairs the live collections
_IN_PLACE = "in-place"
#: the scenarios that run on a live gateway (``--live GATEWAY_URL``)
_LIVE_SCENARIOS = ("provider-outage", "region-outage")
_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "aborted": "yellow"}


def _fmt(seconds: float | None) -> str:
    from drkit.drills.report import fmt_seconds

    return fmt_seconds(seconds)


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


@contextlib.contextmanager
def _exit_on_interrupt(json_: bool, *, show_journal: bool) -> Iterator[None]:
    """An interrupted drill (its rollback already ran) exits 130, showing its journal so far.

    SIGTERM (a service manager, ``kill``, a CI timeout) interrupts it as Ctrl-C does, so
    its rollback runs too (a drill's sandboxes are never left in the live stores); the
    exit is then 143.
    """
    from drkit.drills.engine import DrillInterrupted

    received: list[int] = []

    def terminate(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    try:
        yield
    except DrillInterrupted as exc:
        err_console.print("interrupted; rollback ran")
        if show_journal:
            stopped = exc.journal
            emit(stopped.model_dump(mode="json"), json_, lambda o: render_journal(o, stopped))
        raise typer.Exit(128 + received[0] if received else 130) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


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
def run_cmd(  # long: typer options, one per line; the body is 40 lines
    scenario: Annotated[str, typer.Argument(help="Scenario name (`drkit drill list`).")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="Route or component to drill (default: the first)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region to lose (region-outage).")
    ] = None,
    seed: SeedOption = 0,
    live: Annotated[
        str | None,
        typer.Option(
            "--live",
            metavar="GATEWAY_URL|in-place",
            help="provider-outage: fault a fraction of the real traffic of the gateway "
            "running at GATEWAY_URL (a live drill); region-outage: drain the region on "
            "every route with a target there (the annual exercise). data-corruption: "
            "`--live in-place` damages the live vector collections and repairs them with "
            "restore --replace (writes since the snapshot are lost).",
        ),
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", help="Live drill: share of the route's requests to fault."),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="Live drill: how long the fault lasts (e.g. 10m)."),
    ] = None,
    lease: Annotated[
        str | None,
        typer.Option(
            "--lease",
            help="Live drill: the gateway lifts the fault when not renewed for this long "
            "(default: testing.live_limits.lease).",
        ),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Live drill: who runs it (default: user@host)."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target", help="Live provider-outage: target to fault (default: the primary)."
        ),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Run one drill; exit 1 when it fails its targets (the reasons say why)."""
    from drkit.drills.scenarios import DrillOptions
    from drkit.workspace import Workspace

    in_place = live == _IN_PLACE
    url = None if live is None or in_place else live
    if in_place and scenario != "data-corruption":
        from drkit.errors import UsageError

        raise UsageError(
            f"--live in-place is for data-corruption, not {scenario}",
            hint="--live GATEWAY_URL runs a live drill on a running gateway",
        )
    with Workspace.load(plan) as ws, _exit_on_interrupt(json_, show_journal=True):
        gateway = _live_options(ws.plan, scenario, url, fraction, duration, lease, owner, target)
        if gateway is not None:
            pass  # a live drill is a client of the running gateway: no gateway extra needed
        elif scenario == "provider-outage" or (
            scenario == "region-outage" and ws.plan.serving.routes
        ):
            # the serving rehearsal runs a real gateway and simulators
            require_extra("gateway", f"drill {scenario}")
        if not json_:
            where = f" live on {url}" if url else ""
            err_console.print(f"drill {scenario}{where} on plan {ws.plan.name!r} (seed {seed})")
        journal, path = ws.run_drill(
            scenario,
            DrillOptions(seed=seed, subject=subject, region=region, live=in_place, gateway=gateway),
            on_step=_step_printer(json_),
        )
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


def _live_options(
    plan_: Any,
    scenario: str,
    url: str | None,
    fraction: float | None,
    duration: str | None,
    lease: str | None,
    owner: str | None,
    targets: list[str] | None,
) -> Any:
    """The live drill's options (None: not live); UsageError for options without --live."""
    from drkit.errors import UsageError
    from drkit.types import parse_duration

    given = [
        name
        for name, value in (
            ("--fraction", fraction),
            ("--duration", duration),
            ("--lease", lease),
            ("--owner", owner),
            ("--target", targets),
        )
        if value
    ]
    if url is None:
        if given:
            raise UsageError(f"{given[0]} is for live drills only", hint="add --live GATEWAY_URL")
        return None
    if scenario not in _LIVE_SCENARIOS:
        raise UsageError(
            f"--live GATEWAY_URL is for {' and '.join(_LIVE_SCENARIOS)}, not {scenario}",
            hint="data-corruption takes --live without a URL",
        )
    if fraction is None and scenario == "region-outage":
        fraction = 1.0  # the regional exercise drains the region (within the plan's limit)
    if fraction is None or duration is None:
        raise UsageError(
            "a live drill needs --fraction and --duration",
            hint="e.g. --live http://127.0.0.1:8787 --fraction 0.05 --duration 10m",
        )

    def seconds(option: str, text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise UsageError(f"{option} {text!r}: {exc}", hint="e.g. 90s, 10m, 1h") from None

    from drkit.drills.live_options import LiveOptions, admin_key, check_limits, default_owner

    options = LiveOptions(
        url=url,
        fraction=fraction,
        duration_s=seconds("--duration", duration),
        admin_key=admin_key(plan_),
        lease_s=seconds("--lease", lease) if lease else None,
        owner=owner or default_owner(),
        targets=tuple(targets or ()),
    )
    check_limits(options, plan_.testing.live_limits)
    return options


@drill_app.command("abort")
def abort_cmd(
    drill: Annotated[str, typer.Argument(help="The live drill's id (its journal id).")],
    live: Annotated[
        str | None,
        typer.Option(
            "--live",
            help="The gateway's URL (default: the one the drill recorded in drkit's state).",
        ),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Lift a live drill's fault on the gateway now."""
    from drkit.drills.live import EVENT_STARTED, abort
    from drkit.drills.live_options import admin_key
    from drkit.errors import UsageError
    from drkit.workspace import Workspace

    with Workspace.load(plan) as ws:
        url = live
        if url is None:
            started = [e for e in ws.state().events(kind=EVENT_STARTED) if e.component == drill]
            if not started:
                raise UsageError(
                    f"no live drill {drill!r} in drkit's state",
                    hint="give the gateway with --live URL, or see `drkit drill history`",
                )
            url = str(started[-1].data["gateway"])
        view = abort(url, admin_key(ws.plan), drill)
    out = {"drill": drill, "gateway": url, **view}
    emit(
        out,
        json_,
        lambda o: o.print(
            f"live fault of {drill} on {url}: {view.get('state')} ({view.get('why')})",
            markup=False,
        ),
    )


@drill_app.command("list")
def list_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """The scenarios and whether this plan can run them now, and if not what is missing."""
    from drkit.drills.readiness import missing
    from drkit.drills.scenarios import SCENARIOS
    from drkit.workspace import Workspace

    with Workspace.load(plan) as ws:
        plan_ = ws.plan
        needs = missing(ws.stack())
    rows: list[dict[str, Any]] = []
    for s in SCENARIOS.values():
        why = s.why_not(plan_)
        lacking = [] if why is not None else needs.get(s.name, [])
        rows.append(
            {
                "scenario": s.name,
                "runnable": why is None and not lacking,
                "why_not": why if why is not None else ("; ".join(lacking) or None),
                "needs": lacking,
                "summary": s.summary,
            }
        )

    def render(out: Console) -> None:
        table = Table(show_header=True, header_style="bold")
        for col in ("scenario", "runnable", "what it does / what is missing"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if r["runnable"]:
                cell = r["summary"]
            elif r["needs"]:
                cell = "\n".join(r["needs"])
            else:
                cell = str(r["why_not"])
            runnable = "[green]yes[/]" if r["runnable"] else "[yellow]no[/]"
            table.add_row(r["scenario"], runnable, cell)
        out.print(table)

    emit(rows, json_, render)


@drill_app.command("history")
def history_cmd(
    scenario: Annotated[str | None, typer.Option("--scenario", help="Only this scenario.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N drills (N >= 1).")] = 20,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Past drills from drkit's state: when, verdict, measured RTO/RPO against targets."""
    from drkit.errors import UsageError
    from drkit.workspace import Workspace

    if limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {limit}", hint="e.g. --limit 20")
    with Workspace.load(plan) as ws:
        records = ws.drill_history(scenario)[-limit:]
    rows = []
    for rec in records:
        j = rec.journal
        rows.append(
            {
                "id": rec.id,
                "at": rfc3339(rec.at),
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
        if not rows and scenario is not None:
            out.print(
                f"no drills match --scenario {scenario}: see `drkit drill history` for all",
                markup=False,
            )
            return
        if not rows:
            out.print("no drills recorded yet: run `drkit drill run SCENARIO`", markup=False)
            return
        table = Table(show_header=True, header_style="bold")
        for col in ("when", "scenario", "verdict"):
            table.add_column(col, no_wrap=True)
        for col in ("RTO / target", "RPO / target", "id"):
            table.add_column(col)
        for r in rows:
            style = _VERDICT_STYLE.get(r["verdict"], "bold red")
            table.add_row(
                r["at"].replace("T", " ")[:19] + "Z",
                r["scenario"],
                Text(r["verdict"], style=style),
                f"{_fmt(r['rto_s'])} / {_fmt(r['rto_target_s'])}",
                f"{_fmt(r['rpo_s'])} / {_fmt(r['rpo_target_s'])}",
                Text(r["id"].rsplit("-", 1)[-1], style="dim"),
            )
        out.print(table)

    emit(rows, json_, render)


def render_scorecard(out: Console, day: GameDay) -> None:
    table = Table(title=f"Game day scorecard: {day.plan}", show_header=True, header_style="bold")
    table.add_column("scenario", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for col in ("RTO measured / target", "RPO measured / target", "detection"):
        table.add_column(col)
    from drkit.drills.report import scorecard

    rows = scorecard(day.journals)
    for row in rows:

        def cell(m: Measurement) -> Text:
            style = "" if m.met is None else ("green" if m.met else "bold red")
            return Text(f"{_fmt(m.measured_s)} / {_fmt(m.target_s)}", style=style)

        table.add_row(
            row.scenario,
            Text(row.verdict.upper(), style=_VERDICT_STYLE.get(row.verdict, "bold red")),
            cell(row.rto),
            cell(row.rpo),
            Text(_fmt(row.detection.measured_s)),
        )
    out.print(table)
    for row in rows:
        figures = ", ".join(f"{k}={v:g}" for k, v in sorted(row.metrics.items()))
        out.print(Text.assemble((row.scenario, "bold"), f": {figures}"), soft_wrap=True)
        for reason in row.reasons:
            out.print(Text(f"  reason: {reason}", style="red"), soft_wrap=True)
    passed = sum(1 for j in day.journals if j.verdict == "pass")
    out.print(Text(f"{passed} of {len(day.journals)} drills passed; report: {day.report}"))


def gameday_cmd(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="Run only these scenarios (repeatable)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Where to write the HTML report."),
    ] = None,
    seed: SeedOption = 0,
    live: Annotated[
        str | None,
        typer.Option(
            "--live",
            metavar="GATEWAY_URL",
            help="Run provider-outage as a live drill on the gateway running there "
            "(with --fraction and --duration); the other drills as usual.",
        ),
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option("--fraction", help="Live provider-outage: share of requests to fault."),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="Live provider-outage: how long (e.g. 10m)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Run the plan's drills, print the scorecard, write the HTML report; exit 1 if one fails."""
    from drkit.workspace import Workspace, run_gameday

    with Workspace.load(plan) as ws, _exit_on_interrupt(json_, show_journal=False):
        gateway = _live_options(
            ws.plan, "provider-outage", live, fraction, duration, None, None, None
        )
        if ws.plan.serving.routes:  # serving drills rehearse on a real gateway
            require_extra("gateway", "gameday on a plan with serving routes")
        day = run_gameday(
            ws,
            seed=seed,
            scenarios=list(scenario or []),
            report=report,
            live=gateway,
            on_drill=None if json_ else lambda name: err_console.print(f"[bold]drill {name}[/]"),
            on_step=_step_printer(json_),
        )
    emit(day.to_json(), json_, lambda out: render_scorecard(out, day))
    if not day.passed:
        failed = [j.scenario for j in day.journals if j.verdict != "pass"]
        raise CheckFailed(
            f"game day: {len(failed)} drill(s) failed: {', '.join(failed)}",
            hint=f"read the report {day.report}",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
    app.command("gameday")(gameday_cmd)


__all__ = ["console", "register"]
