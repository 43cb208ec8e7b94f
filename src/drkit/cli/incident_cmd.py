"""``drkit incident open|update|resolve|list|show``: incidents in drkit's state."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

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
        "discarded": inc.discarded or None,
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


@incident_app.command("role")
def role_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    role: Annotated[str, typer.Argument(help="commander|communications|scribe.")],
    person: Annotated[str, typer.Argument(help="Who holds it.")],
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Assign an incident role (incident commander, communications lead, scribe)."""
    book = _book(plan)
    book.set_role(incident, role, person)
    _show(book.get(incident), as_json)


@incident_app.command("discard")
def discard_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (false alarm, drill...).")],
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Discard a drafted incident that never went public."""
    book = _book(plan)
    book.discard(incident, reason, by="cli")
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
                "yes" if i.public else "discarded" if i.discarded else "draft",
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


class _IncidentFirst(TyperGroup):
    """``drkit postmortem INCIDENT ...`` drafts; ``drkit postmortem action ...`` tracks the
    action items (an incident id is never a subcommand's name)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["draft", *args]
        return super().parse_args(ctx, args)


postmortem_app = typer.Typer(
    name="postmortem",
    cls=_IncidentFirst,
    help="Postmortems: `drkit postmortem INCIDENT [--format md|html] [-o FILE]` drafts one "
    "(Google SRE template, with what drkit measured); `drkit postmortem action ...` tracks "
    "its action items to closure.",
    no_args_is_help=True,
)
action_app = typer.Typer(
    name="action", help="A postmortem's action items, tracked to closure.", no_args_is_help=True
)
postmortem_app.add_typer(action_app, name="action")


@postmortem_app.command("draft", hidden=True)
def postmortem_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write it here (default: stdout)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="md (Markdown) or html.")] = "md",
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
    text = draft(loaded, StateStore(plan_state_location(loaded)), book.get(incident), format=format)
    if output:
        Path(output).write_text(text)

    def render(out: Console) -> None:
        if output:
            out.print(f"postmortem of {incident} written to {output}", markup=False)
        else:
            out.print(text, markup=False, end="")

    emit({"incident": incident, "output": output, "format": format, "text": text}, as_json, render)


@postmortem_app.command("publish")
def publish_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id (resolved, public).")],
    file: Annotated[str, typer.Argument(help="The reviewed postmortem, Markdown.")],
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Publish a reviewed postmortem on the status page (/incidents/ID/postmortem)."""
    from pathlib import Path

    from drkit.errors import InputError
    from drkit.plan.loader import load_plan
    from drkit.state.store import StateStore, plan_state_location
    from drkit.status.postmortem import publish

    loaded = load_plan(plan)
    path = Path(file)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot read it ({exc})", hint="give the Markdown file") from exc
    publish(StateStore(plan_state_location(loaded)), _book(plan).get(incident), text, by="cli")

    def render(out: Console) -> None:
        out.print(f"postmortem of {incident} published: /incidents/{incident}/postmortem")

    emit({"incident": incident, "published": True, "path": f"/incidents/{incident}/postmortem"},
         as_json, render)  # fmt: skip


def _actions(plan: Any) -> Any:
    from drkit.plan.loader import load_plan
    from drkit.state.store import StateStore, plan_state_location
    from drkit.status.actions import Actions

    return Actions(StateStore(plan_state_location(load_plan(plan))))


def _action_doc(a: Any) -> dict[str, Any]:
    return {
        "incident": a.incident,
        "id": a.id,
        "text": a.text,
        "type": a.type,
        "owner": a.owner,
        "due": a.due,
        "status": a.status,
        "overdue": a.overdue(),
        "note": a.note,
    }


def _show_actions(found: list[Any], as_json: bool) -> None:
    def render(out: Console) -> None:
        if not found:
            out.print("no action items")
            return
        table = Table("incident", "id", "action", "type", "owner", "due", "status")
        for a in found:
            status = a.status + (" (overdue)" if a.overdue() else "")
            table.add_row(a.incident, a.id, a.text, a.type, a.owner, a.due, status)
        out.print(table)

    emit({"actions": [_action_doc(a) for a in found]}, as_json, render)


@action_app.command("add")
def action_add_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Argument(help="What will be done.")],
    type: Annotated[str, typer.Option("--type", help="mitigate|prevent|process.")],
    owner: Annotated[str, typer.Option("--owner", help="Who owns it.")],
    due: Annotated[str, typer.Option("--due", help="Due date, YYYY-MM-DD.")],
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Add an action item to an incident's postmortem."""
    action = _actions(plan).add(incident, text, type=type, owner=owner, due=due)
    _show_actions([action], as_json)


@action_app.command("close")
def action_close_cmd(
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    action: Annotated[str, typer.Argument(help="Action id, e.g. a1.")],
    note: Annotated[str, typer.Option("--note", "-m", help="How it was done.")] = "",
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """Close an action item."""
    _show_actions([_actions(plan).close(incident, action, note, by="cli")], as_json)


@action_app.command("list")
def action_list_cmd(
    incident: Annotated[
        str | None, typer.Argument(help="Incident id (default: every incident).")
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open items.")] = False,
    plan: PlanOption = DEFAULT_PLAN,
    as_json: JsonOption = False,
) -> None:
    """List action items, with the overdue ones marked."""
    found = [a for a in _actions(plan).all(incident) if not open_only or a.status == "open"]
    _show_actions(found, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
    app.add_typer(postmortem_app, name="postmortem")
