"""``drkit incident open|update|resolve|list|show``: incidents in drkit's state."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit, rfc3339

incident_app = typer.Typer(
    name="incident", help="Incidents: typed updates, roles, drafts.", no_args_is_help=True
)


def _book(plan: Any) -> Any:
    from drkit.plan.loader import load_plan
    from drkit.state.store import StateStore, plan_state_location
    from drkit.status.incidents import Incidents

    loaded = load_plan(plan)
    return Incidents(
        StateStore(plan_state_location(loaded)), [c.name for c in loaded.status_page.components]
    )


def _doc(inc: Any) -> dict[str, Any]:
    return {
        "id": inc.id,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status,
        "public": inc.public,
        "components": inc.components,
        "roles": inc.roles,
        "created_at": rfc3339(inc.created_at),
        "resolved_at": rfc3339(inc.resolved_at) if inc.resolved_at else None,
        "updates": [
            {
                "id": u.id,
                "at": rfc3339(u.at),
                "status": u.status,
                "body": u.body,
                "public": u.public,
                "author": u.author,
            }
            for u in inc.updates
        ],
    }


def _show(inc: Any, as_json: bool) -> None:
    def render(out: Console) -> None:
        out.print(
            f"{inc.id}  {inc.title}  [{inc.severity}, {inc.status}"
            f"{'' if inc.public else ', draft'}]",
            markup=False,
        )
        out.print(f"  affects: {', '.join(inc.components)}", markup=False)
        for u in inc.updates:
            out.print(
                f"  {rfc3339(u.at)} {u.status}{'' if u.public else ' (draft)'}: {u.body}",
                markup=False,
            )

    emit(_doc(inc), as_json, render)


@incident_app.command("open")
def open_cmd(
    title: Annotated[str, typer.Argument(help="What customers see as the incident's name.")],
    component: Annotated[
        list[str], typer.Option("--component", "-c", help="An affected status_page component.")
    ],
    severity: Annotated[str, typer.Option("--severity", help="sev1..sev4.")] = "sev3",
    message: Annotated[str, typer.Option("--message", "-m", help="The first update.")] = "",
    impact: Annotated[
        str | None, typer.Option("--impact", help="Override: none|minor|major|critical.")
    ] = None,
    commander: Annotated[
        str | None, typer.Option("--commander", help="The incident commander.")
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Open an incident (public at once: a person opened it)."""
    book = _book(plan)
    inc = book.open(title, components=component, severity=severity, body=message, impact=impact)
    if commander:
        book.set_role(inc.id, "commander", commander)
        inc = book.get(inc.id)
    _show(inc, as_json)


@incident_app.command("update")
def update_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id, e.g. inc-3.")],
    status: Annotated[
        str, typer.Option("--status", help="investigating|identified|monitoring|resolved.")
    ],
    message: Annotated[str, typer.Option("--message", "-m", help="The update's text.")],
    draft: Annotated[
        bool, typer.Option("--draft", help="Draft it: public only once approved.")
    ] = False,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Post a typed update on an incident."""
    book = _book(plan)
    book.update(incident, status, message, draft=draft)
    _show(book.get(incident), as_json)


@incident_app.command("approve")
def approve_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    update: Annotated[
        str | None, typer.Option("--update", help="The drafted update (default: newest).")
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Approve a drafted update: it goes on the public page."""
    book = _book(plan)
    book.approve(incident, update, by="cli")
    _show(book.get(incident), as_json)


@incident_app.command("resolve")
def resolve_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    message: Annotated[str, typer.Option("--message", "-m", help="The closing update.")] = "",
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Resolve an incident."""
    book = _book(plan)
    book.resolve(incident, message)
    _show(book.get(incident), as_json)


@incident_app.command("list")
def list_cmd(plan: PlanOption = DEFAULT_PLAN, as_json: JsonOption = False) -> None:
    """List incidents, newest first (drafts included)."""
    found = sorted(_book(plan).all().values(), key=lambda i: i.created_at, reverse=True)

    def render(out: Console) -> None:
        if not found:
            out.print("no incidents")
            return
        table = Table("id", "title", "severity", "status", "public", "opened")
        for i in found:
            table.add_row(
                i.id,
                i.title,
                i.severity,
                i.status,
                "yes" if i.public else "draft",
                rfc3339(i.created_at),
            )
        out.print(table)

    emit({"incidents": [_doc(i) for i in found]}, as_json, render)


@incident_app.command("show")
def show_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Show one incident with its updates."""
    _show(_book(plan).get(incident), as_json)


def postmortem_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the Markdown here (default: stdout)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Draft the incident's postmortem (Google SRE template) with what drkit measured."""
    from pathlib import Path

    from drkit.extras import require

    require("status", "drkit postmortem")
    from drkit.plan.loader import load_plan
    from drkit.state.store import StateStore, plan_state_location
    from drkit.status.postmortem import draft

    loaded = load_plan(plan)
    book = _book(plan)
    text = draft(loaded, StateStore(plan_state_location(loaded)), book.get(incident))
    if output:
        Path(output).write_text(text)

    def render(out: Console) -> None:
        if output:
            out.print(f"postmortem of {incident} written to {output}", markup=False)
        else:
            out.print(text, markup=False, end="")

    emit({"incident": incident, "output": output, "markdown": text}, as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
    app.command("postmortem")(postmortem_cmd)
