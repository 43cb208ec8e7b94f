"""``drkit providers``: SLA vs measured availability, and switching readiness per route."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.errors import CheckFailed, UsageError


def providers_cmd(
    window: Annotated[
        str, typer.Option("--window", help="How far back measured figures look, e.g. 7d.")
    ] = "30d",
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Each provider's SLA beside its availability measured from the gateway's events, each
    route's composite availability, and whether every secondary target is ready to take
    over (SLA recorded, credits not counted as DR, served recently, no eval gate failed, no
    field of the route's clients refused by its dialect's translator); exit 1 when one is not."""
    from drkit.types import parse_duration
    from drkit.workspace import Workspace
    from drkit.workspace.costing import providers

    try:
        span = parse_duration(window)
    except ValueError as exc:
        raise UsageError(f"--window {window!r}: {exc}", hint="e.g. --window 7d") from exc
    with Workspace.load(plan) as ws:
        data = providers(ws, window=span)
    emit(data, json_, lambda out: _render(out, data))
    if not data["ready"]:
        refused = [r for s in data["readiness"] for r in s["refused"]]
        raise CheckFailed(
            "a secondary target is not ready to take over",
            hint=refused[0]["hint"]
            if refused
            else "run `drkit drill run provider-outage` and record every provider's SLA",
        )


def _feed(p: dict[str, Any]) -> str:
    if not p["status_url"]:
        return "-"
    feed = p["status_feed"] or {}
    if feed.get("state") == "outage":
        return f"OUTAGE ({feed.get('level')}: {feed.get('description')})"
    return "clear" if feed.get("state") else "no report in the window"


def _render(out: Console, data: dict[str, Any]) -> None:
    table = Table(title="Providers")
    for col in ("vendor", "SLA %", "measured %", "credits as DR", "status feed", "routes"):
        table.add_column(col)
    for p in data["providers"]:
        table.add_row(
            p["vendor"],
            "-" if p["sla"] is None else str(p["sla"]),
            "not measured" if p["measured"] is None else str(p["measured"]),
            "yes (DR701)" if p["credits_counted_as_dr"] else "no",
            _feed(p),
            ", ".join(p["routes"]) or "-",
        )
    out.print(table)
    for r in data["routes"]:
        a = r["availability"]
        shown = "unknown" if a is None else f"{a * 100:.4f}%"
        out.print(f"route {r['route']}: composite availability {shown} ({r['source']})")
    for s in data["readiness"]:
        missing = [
            what
            for what, ok in (
                ("SLA not recorded", s["sla_recorded"]),
                ("credits counted as DR", s["credits_not_dr"]),
                ("not served recently", s["served_recently"]),
                ("its status feed announces an outage", s["feed_clear"]),
                ("failed the eval gate", s["eval_gate"] != "failed"),
            )
            if not ok
        ]
        missing += [f"cannot carry {r['field']} ({r['reason']})" for r in s["refused"]]
        verdict = "ready" if s["ready"] else "NOT ready: " + ", ".join(missing)
        if s["ready"] and s["eval_gate"] == "not evaluated":
            verdict += " (quality not evaluated: no eval run it served in the window)"
        out.print(f"  {s['route']} -> {s['target']} ({s['vendor']}): {verdict}")
        for r in s["refused"]:
            out.print(f"    Try: {r['hint']}")


def register(app: typer.Typer) -> None:
    app.command("providers")(providers_cmd)
