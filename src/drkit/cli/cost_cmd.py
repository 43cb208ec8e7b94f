"""``drkit cost``: what DR costs per tier and component, from measured sizes and runs."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit


def cost_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """What DR costs per tier and component per month, from measured sizes and runs, beside
    the expected outage loss it buys down (docs/cost.md). Every figure says its source."""
    from drkit.cost.model import estimate
    from drkit.workspace import Workspace
    from drkit.workspace.costing import measure

    with Workspace.load(plan) as ws:
        report = estimate(ws.plan, measure(ws))
        data = report.to_json(ws.plan)
    emit(data, json_, lambda out: _render(out, data))


def _money(x: float | None, cur: str) -> str:
    return "unknown" if x is None else f"{x:,.2f} {cur}"


def _render(out: Console, data: dict[str, Any]) -> None:
    cur = data["currency"]
    table = Table(title=f"DR cost of plan {data['plan']!r} per month")
    for col in ("tier", "component", "category", "region", "per month", "source", "basis"):
        table.add_column(col, overflow="fold")
    for line in data["lines"]:
        table.add_row(
            line["tier"],
            line["component"],
            line["category"],
            line["region"] or "-",
            _money(line["monthly"], cur),
            line["source"],
            line["basis"],
        )
    out.print(table)
    tiers = Table(title="Per tier")
    for col in ("tier", "DR per month", "DR per year", "outage loss/year", "loss bought down"):
        tiers.add_column(col)
    for t in data["tiers"]:
        tiers.add_row(
            t["tier"],
            _money(t["monthly"], cur),
            _money(t["yearly"], cur),
            _money(t["outage_loss_year"], cur),
            _money(t["outage_loss_bought_down_year"], cur),
        )
    out.print(tiers)
    for r in data["routes"]:
        a = r["availability"]
        shown = "unknown (a provider's SLA is not recorded)" if a is None else f"{a * 100:.4f}%"
        hours = r["outage_hours_per_year"]
        out.print(
            f"route {r['route']} ({r['tier']}): availability {shown} ({r['source']}), "
            f"expected outage {'-' if hours is None else f'{hours:.2f}'} h/year, "
            f"loss {_money(r['outage_loss_year'], cur)}/year"
        )
    out.print(f"total: {_money(data['monthly'], cur)} per month")
    for w in data["warnings"]:
        out.print(f"warning: {w}")


def register(app: typer.Typer) -> None:
    app.command("cost")(cost_cmd)
