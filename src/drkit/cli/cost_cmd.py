"""``drkit cost``: what DR costs per tier and component, from measured sizes and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, console, emit
from drkit.cost.model import amount


def cost_cmd(
    what_if: Annotated[
        list[str] | None,
        typer.Option(
            "--what-if",
            metavar="NAME=TIER|TIER.FIELD=VALUE",
            help="Price a change of the plan: move a component or route to another tier "
            "(kb=standard) or change a tier's rto, rpo, multi_region or critical "
            "(critical.multi_region=false); repeatable, applied in order.",
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write the report (and the what-if) as one HTML page to FILE.",
        ),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """What DR costs per tier and component per month, from measured sizes and runs, beside
    the expected outage loss it buys down (docs/cost.md). Every figure says its source.
    With --what-if: the difference a change of tiers would make in cost, expected outage
    loss and RPO/RTO."""
    from drkit.cost.model import estimate
    from drkit.cost.whatif import parse
    from drkit.cost.whatif import what_if as price_change
    from drkit.workspace import Workspace
    from drkit.workspace.costing import measure

    specs = list(what_if or [])
    for spec in specs:
        parse(spec)  # bad syntax fails before anything is opened
    if html is not None:
        from drkit.extras import require

        require("status", "drkit cost --html")
    with Workspace.load(plan) as ws:
        measured = measure(ws)
        data = estimate(ws.plan, measured).to_json(ws.plan)
        delta = price_change(ws.plan, specs, measured) if specs else None
    if html is not None:
        from drkit.cost.html import render

        _write(html, render(data, delta))
    if delta is not None:
        emit(delta, json_, lambda out: _render_what_if(out, delta))
    else:
        emit(data, json_, lambda out: _render(out, data))
    if html is not None and not json_:
        console.print(f"HTML report: {html}")


def _write(path: Path, text: str) -> None:
    """Write ``text`` whole or not at all (a temporary file renamed into place)."""
    import os
    import tempfile

    from drkit.errors import UsageError

    target = path.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(
            f"--html {path}: {exc.strerror or exc}", hint="give a file in a writable directory"
        ) from exc


def _money(x: float | None, cur: str) -> str:
    return "unknown" if x is None else f"{amount(x)} {cur}"


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


def _signed(x: float | None, cur: str) -> str:
    return "unknown" if x is None else f"{amount(x, '+')} {cur}"


def _dur(s: float | None) -> str:
    from drkit.types import format_duration

    return "-" if s is None else format_duration(s)


def _region_loss(row: dict[str, Any]) -> str:
    if not row["offsite_copies"]:
        return "all data (no copy in another region)"
    return _dur(row["rpo_region_loss_s"])


def _render_what_if(out: Console, data: dict[str, Any]) -> None:
    cur = data["currency"]
    out.print(f"what if {', '.join(data['what_if'])} (plan {data['plan']!r}):")
    for change in data["changes"]:
        out.print(f"  {change}")
    table = Table(title="Difference per tier")
    for col in ("tier", "DR per month", "change", "outage loss/year", "change"):
        table.add_column(col)
    for t in data["tiers"]:
        table.add_row(
            t["tier"],
            f"{_money(t['monthly_before'], cur)} -> {_money(t['monthly_after'], cur)}",
            _signed(t["monthly_delta"], cur),
            f"{_money(t['outage_loss_year_before'], cur)} -> "
            f"{_money(t['outage_loss_year_after'], cur)}",
            _signed(t["outage_loss_year_delta"], cur),
        )
    out.print(table)
    for o in data["objectives"]:
        b, a = o["before"], o["after"]
        text = (
            f"{o['name']}: tier {b['tier']} -> {a['tier']}, RTO target "
            f"{_dur(b['rto_target_s'])} -> {_dur(a['rto_target_s'])}, RPO target "
            f"{_dur(b['rpo_target_s'])} -> {_dur(a['rpo_target_s'])}"
        )
        if "rpo_achievable_s" in b:
            text += (
                f", achievable RPO {_dur(b['rpo_achievable_s'])} -> "
                f"{_dur(a['rpo_achievable_s'])}, RPO on a region loss "
                f"{_region_loss(b)} -> {_region_loss(a)}, copies in another region "
                f"{len(b['offsite_copies'])} -> {len(a['offsite_copies'])}"
            )
        else:
            text += f", targets {', '.join(b['targets'])} -> {', '.join(a['targets'])}"
        out.print(text)
    out.print(
        f"DR cost {_signed(data['monthly_delta'], cur)} per month "
        f"({_signed(data['yearly_delta'], cur)} a year); expected outage loss "
        f"{_signed(data['outage_loss_year_delta'], cur)} a year"
    )
    for f in data["new_findings"]:
        out.print(f"plan check would add: {f['rule']} {f['severity']}: {f['message']}")


def register(app: typer.Typer) -> None:
    app.command("cost")(cost_cmd)
