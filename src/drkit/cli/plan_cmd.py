"""``drkit init`` and ``drkit plan check|show|schema``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, console, emit
from drkit.errors import CheckFailed

if TYPE_CHECKING:  # the plan model (pydantic) loads when a command runs, not at start-up
    from drkit.plan.lint import Violation
    from drkit.plan.models import Plan

plan_app = typer.Typer(
    name="plan",
    help="Read, explain and check the DR plan (drkit.yaml).",
    no_args_is_help=True,
)

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
#: after ``://``: ``user:`` then the password up to ``@`` (neither crosses ``/`` or spaces)
_USERINFO = re.compile(r"[^/@:\s]*:[^/@\s]*@")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def mask_userinfo(text: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://user:**********@host``, in time linear
    in ``text``: matches are tried only at each ``://``, and neither the scheme scanned
    back nor the userinfo scanned forward crosses a ``/`` (so each character is looked at
    a bounded number of times), unlike one regex that retries the scheme at every letter."""
    out: list[str] = []
    done = 0
    at = text.find("://")
    while at != -1:
        start = at
        while start > done and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < at and not text[start].isalpha():  # a scheme starts with a letter
            start += 1
        m = _USERINFO.match(text, at + 3) if start < at else None
        if m is not None:
            colon = text.index(":", at + 3)
            out.append(text[done : colon + 1] + "**********@")
            done = m.end()
            at = text.find("://", done)
        else:
            at = text.find("://", at + 3)
    out.append(text[done:])
    return "".join(out)


def _mask_urls(value: Any) -> Any:
    """Mask the password of ``scheme://user:password@host`` URLs (from ${ENV} expansion)."""
    if isinstance(value, str):
        return mask_userinfo(value)
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    return value


def plan_as_data(plan: Plan) -> dict[str, Any]:
    """The plan as drkit understands it: defaults filled, durations normalised, secrets masked."""
    data: dict[str, Any] = _mask_urls(plan.model_dump(mode="json"))
    return data


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


@plan_app.command("check")
def check(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """Lint the plan against the DR framework; exit 1 when a rule of severity error fails."""
    from drkit.plan.lint import Severity, count, lint
    from drkit.plan.loader import load_plan

    loaded = load_plan(plan)
    check_url_schemes(loaded)
    rpo_rows: list[Any] | None = []
    violations = lint(loaded) + _overdue(loaded, plan, rpo_rows)
    errors = count(violations, Severity.ERROR)
    warnings = count(violations, Severity.WARNING)
    data = {
        "plan": str(plan),
        "name": loaded.name,
        "ok": errors == 0,
        "errors": errors,
        "warnings": warnings,
        "infos": count(violations, Severity.INFO),
        "violations": [v.to_dict() for v in violations],
    }
    if rpo_rows:  # beside a state: measured next to computed and target (DR594)
        data["rpo"] = [m.to_json() for m in rpo_rows]
    emit(data, json_, lambda out: _render_check(out, loaded, violations, rpo_rows))
    if errors:
        raise CheckFailed(
            f"plan check found {errors} error{'s' if errors != 1 else ''}",
            hint="fix the findings above; docs/framework.md explains each rule",
        )


def check_url_schemes(plan: Plan) -> None:
    """Raise :class:`PlanError` at the first repository or engine URL whose scheme no
    connector handles (registries are read, no connector is loaded)."""
    from drkit.connectors.objectstore.registry import scheme_of
    from drkit.connectors.objectstore.registry import schemes as store_schemes
    from drkit.connectors.vectorstore.registry import schemes as engine_schemes
    from drkit.errors import PlanError

    repos = [("primary", None), *(("replicas", i) for i in range(len(plan.repositories.replicas)))]
    for section, index in repos:
        model = plan.repositories.primary if index is None else plan.repositories.replicas[index]
        known = store_schemes()
        scheme = scheme_of(model.url)
        if scheme not in known:
            path: tuple[str | int, ...] = ("repositories", section)
            if index is not None:
                path += (index,)
            loc = plan.locate(*path, "url")
            raise PlanError(
                f"no object-store connector handles {scheme}:// URLs",
                file=loc.file,
                line=loc.line,
                field=loc.field,
                hint="use one of: "
                + ", ".join(f"{s}://" for s in sorted(known))
                + " (docs/storage.md)",
            )
    for i, vs in enumerate(plan.vector_stores):
        known = engine_schemes()
        engine = str(vs.engine)
        scheme = engine.split("://", 1)[0].lower() if "://" in engine else ""
        if scheme not in known:
            loc = plan.locate("vector_stores", i, "engine")
            raise PlanError(
                f"no vector-store connector handles {scheme}:// URLs"
                if scheme
                else f"engine {engine!r} is not a URL (SCHEME://...)",
                file=loc.file,
                line=loc.line,
                field=loc.field,
                hint="use one of: "
                + ", ".join(f"{s}://" for s in sorted(known))
                + " (docs/vector-stores.md)",
            )


def _overdue(loaded: Plan, path: Path, rpo_rows: list[Any] | None = None) -> list[Violation]:
    """Drills and restore tests overdue by the cadence, from drkit's state, and DR304
    (training dataset versions exist) against the repository (drkit.workspace); the cost
    rules DR711/DR712 (drkit.cost.checks) priced from what was measured, else the plan;
    beside a state, the measured RPO (DR594; its rows appended to ``rpo_rows``)."""
    from drkit.cost.checks import cost_violations
    from drkit.state.store import has_state, plan_state_location

    state_exists = has_state(plan_state_location(loaded))
    asks_repositories = any(m.trained_on for m in loaded.models) or bool(
        loaded.repositories.replicas
    )
    if not asks_repositories and not state_exists:
        return cost_violations(loaded)  # drkit never ran here: the plan alone
    from drkit.workspace import Workspace
    from drkit.workspace.costing import measure

    with Workspace(loaded, path) as ws:
        from drkit.workspace.lineage import lineage_violations

        found = (
            ws.overdue()
            + ws.repository_checks()
            + cost_violations(loaded, measure(ws))
            + lineage_violations(ws)
        )
        if state_exists and rpo_rows is not None:
            from drkit.agent.rpo import measure_rpo, measured_findings

            rows = measure_rpo(ws)
            rpo_rows.extend(rows)
            found += measured_findings(loaded, rows)
        return found


def _render_check(
    out: Console, plan: Plan, violations: list[Violation], rpo_rows: list[Any] | None = None
) -> None:
    from drkit.plan.lint import Severity, count
    from drkit.types import format_duration

    if rpo_rows:
        table = Table(title="Recovery points: computed from the plan, measured in the repositories")
        for column in ("component", "repository", "computed", "measured", "verified", "target"):
            table.add_column(column)

        def fmt(s: float | None) -> str:
            return "none" if s is None else format_duration(round(s))

        for m in rpo_rows:
            table.add_row(
                m.component,
                f"{m.repository} ({m.region})",
                fmt(m.computed_s),
                Text(fmt(m.newest_s), style="bold red" if m.exceeded else ""),
                fmt(m.verified_s),
                format_duration(m.target_s),
            )
        out.print(table)

    for v in violations:
        line = Text()
        line.append(v.where, style="bold")
        line.append("  ")
        line.append(f"{v.severity:<7}", style=_STYLE[v.severity])
        line.append(f"  {v.rule}  ")
        line.append(v.field or "-", style="dim")
        line.append(f"  {v.message}")
        out.print(line, soft_wrap=True)
        out.print(Text(f"      Try: {v.hint}"), soft_wrap=True)
    errors = count(violations, Severity.ERROR)
    warnings = count(violations, Severity.WARNING)
    summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning"
    summary += "" if warnings == 1 else "s"
    verdict = "passes" if errors == 0 else "fails"
    out.print(Text(f"plan {plan.name!r} {verdict} the framework check: {summary}"))


@plan_app.command("show")
def show(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """Print the plan as drkit understands it: defaults filled, durations normalised."""
    from drkit.plan.loader import load_plan

    loaded = load_plan(plan)
    data = plan_as_data(loaded)
    emit(data, json_, lambda out: _render_show(out, loaded, data))


def _render_show(out: Console, plan: Plan, data: dict[str, Any]) -> None:
    import yaml

    from drkit.plan.analysis import achievable_rpo
    from drkit.types import format_duration

    text = yaml.safe_dump(_drop_none(data), sort_keys=False, allow_unicode=True, width=100)
    out.print(Text(text.rstrip()), soft_wrap=True)
    table = Table(title="Recovery points (worst case implied by schedule and replication)")
    for column in ("component", "tier", "schedule", "achievable RPO", "target RPO"):
        table.add_column(column)
    for _, comp in plan.components():
        estimate = achievable_rpo(plan, comp)
        tier = plan.tiers.get(comp.tier) if comp.tier else None
        table.add_row(
            comp.name,
            comp.tier or "-",
            str(comp.schedule) if comp.schedule is not None else "-",
            Text(f"{format_duration(estimate.total)} ({estimate.explain()})") if estimate else "-",
            format_duration(tier.rpo) if tier else "-",
        )
    if table.row_count:
        out.print(table)


@plan_app.command("schema")
def schema(json_: JsonOption = False) -> None:
    """Print the JSON Schema of drkit.yaml (always JSON)."""
    from drkit.plan.models import Plan

    document = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    document.update(Plan.model_json_schema(mode="validation"))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def init(
    directory: Annotated[
        Path, typer.Argument(help="Directory to write drkit.yaml into.", show_default=True)
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing plan.")] = False,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="A plan for this machine alone: provider simulators, local repositories in "
            "two regions, sample data; no secrets, no provider account.",
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Write a commented starter drkit.yaml that passes `drkit plan check`."""
    from drkit.plan.starter import write_starter

    path = write_starter(directory, force=force, local=local)
    emit(
        {"path": str(path)},
        json_,
        lambda out: out.print(
            Text(f"wrote {path}\nnext: drkit plan check --plan {path}"), soft_wrap=True
        ),
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(plan_app, name="plan")


__all__ = ["console", "plan_app", "plan_as_data", "register"]
