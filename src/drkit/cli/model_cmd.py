"""``drkit model register|list|show|alias|promote|rollback``: thin shells over the registry.

The registry lives in drkit's state (:mod:`drkit.lineage.registry`); checks that need the
repository or the eval gate are composed in :mod:`drkit.workspace.models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_access import RepoOption

if TYPE_CHECKING:
    from drkit.lineage.registry import AliasChange

model_app = typer.Typer(
    name="model",
    help="The model registry: immutable versions, aliases with history, gated rollback.",
    no_args_is_help=True,
)
alias_app = typer.Typer(
    name="alias", help="Aliases and their append-only ledger.", no_args_is_help=True
)
model_app.add_typer(alias_app)
import_app = typer.Typer(
    name="import", help="Bring another registry's models into drkit's.", no_args_is_help=True
)
model_app.add_typer(import_app)


@import_app.command("mlflow")
def import_mlflow_cmd(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            help="The MLflow tracking/registry URI (http://host:port, sqlite:///file.db).",
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Only this registered model (repeatable)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Import MLflow registered models: versions, aliases, tags and logged dataset inputs."""
    from drkit.lineage.mlflow_import import import_mlflow
    from drkit.workspace.models import open_registry

    with open_registry(plan) as (registry, _):
        result = import_mlflow(registry, tracking_uri, model)

    def render(out: Console) -> None:
        for ref in result.versions:
            out.print(f"imported {ref}", markup=False)
        for a in result.aliases:
            out.print(f"alias    {a}", markup=False)
        for s in result.skipped:
            out.print(f"skipped  {s['what']}: {s['why']}", markup=False)
        if not result.versions and not result.aliases:
            out.print(
                f"nothing new to import from {tracking_uri} "
                f"({len(result.unchanged)} version(s)/alias(es) already in drkit's registry)",
                markup=False,
            )

    emit(result.to_json(), json_, render)


def _when(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S}Z"


@model_app.command("register")
def register_cmd(
    model: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[str, typer.Argument(help="The new version's label (immutable).")],
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            help="PROVIDER=MODEL: what the gateway sends to that provider (repeatable).",
        ),
    ] = None,
    trained_on: Annotated[
        list[str] | None,
        typer.Option(
            "--trained-on",
            help="DATASET@SNAPSHOT (a named version or snapshot id) it was trained on; "
            "checked in the repository (repeatable).",
        ),
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="A directory of the version's files, snapshotted."),
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE (repeatable).")] = None,
    description: Annotated[str, typer.Option("--description", help="What this version is.")] = "",
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Register a new immutable version of a model."""
    from drkit.workspace.access import opened_repository
    from drkit.workspace.models import open_registry, parse_pairs, register

    ups = parse_pairs("--upstream", upstream or [])
    tags = parse_pairs("--tag", tag or [])
    with open_registry(plan) as (registry, loaded):
        done = register(
            registry,
            loaded,
            model,
            version,
            repo=lambda: opened_repository(repo, plan),
            upstream=ups,
            trained_on=trained_on or [],
            artifacts=artifacts,
            tags=tags,
            description=description,
        )
    v = done.version
    data = {**v.to_json(), "new_model": done.new_model}

    def render(out: Console) -> None:
        out.print(f"registered {v.ref}" + (" (a new model)" if done.new_model else ""))
        for t in v.trained_on:
            out.print(f"  trained on {t.label} (snapshot {t.snapshot[:8]})")
        if v.artifacts:
            out.print(f"  artifacts snapshot {v.artifacts[:8]}")
        for provider, name in sorted(v.upstream.items()):
            out.print(f"  upstream {provider}: {name}")

    emit(data, json_, render)


@model_app.command("list")
def list_cmd(plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False) -> None:
    """The registered models, their versions and aliases."""
    from drkit.workspace.models import open_registry

    rows: list[dict[str, Any]] = []
    with open_registry(plan) as (registry, _):
        for name in registry.models():
            versions = registry.versions(name)
            rows.append(
                {
                    "model": name,
                    "versions": [v.version for v in versions],
                    "latest": versions[-1].version,
                    "aliases": registry.aliases_at(name),
                }
            )

    def render(out: Console) -> None:
        if not rows:
            out.print("no models registered yet (`drkit model register MODEL VERSION`)")
            return
        table = Table("model", "versions", "latest", "aliases")
        for r in rows:
            aliases = ", ".join(f"{a}={v}" for a, v in sorted(r["aliases"].items()))
            table.add_row(r["model"], str(len(r["versions"])), r["latest"], aliases or "-")
        out.print(table)

    emit({"models": rows}, json_, render)


@model_app.command("show")
def show_cmd(
    model: Annotated[str, typer.Argument(help="The model, or MODEL@VERSION.")],
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """A model's versions and aliases, or one version (MODEL@VERSION) in full."""
    from drkit.lineage.registry import parse_model_ref
    from drkit.workspace.models import open_registry

    with open_registry(plan) as (registry, _):
        if "@" in model:
            name, label = parse_model_ref(model)
            one = registry.version(name, label)
            aliases = [a for a, v in registry.aliases_at(name).items() if v == label]
            data: dict[str, Any] = {**one.to_json(), "aliases": sorted(aliases)}
            versions = [one]
        else:
            versions = registry.versions(model)
            data = {
                "model": model,
                "versions": [v.to_json() for v in versions],
                "aliases": registry.aliases_at(model),
            }
            aliases = []

    def render(out: Console) -> None:
        for v in versions:
            out.print(f"{v.ref}  registered {_when(v.registered_at)} by {v.by}")
            if v.description:
                out.print(f"  {v.description}")
            for t in v.trained_on:
                out.print(f"  trained on {t.label} (snapshot {t.snapshot[:8]})")
            if v.artifacts:
                out.print(f"  artifacts snapshot {v.artifacts[:8]}")
            for provider, name in sorted(v.upstream.items()):
                out.print(f"  upstream {provider}: {name}")
            for k, val in sorted(v.tags.items()):
                out.print(f"  tag {k}={val}")
        current = data["aliases"]
        if isinstance(current, dict):
            for a, v_ in sorted(current.items()):
                out.print(f"alias {a} -> {v_}")
        elif current:
            out.print("aliases: " + ", ".join(current))

    emit(data, json_, render)


def _render_change(out: Console, c: AliasChange) -> None:
    gate = ""
    if c.gate is not None:
        gate = f" [gate: {c.gate.get('reason')}]"
    out.print(
        f"{_when(c.at)}  {c.model}:{c.alias} {c.from_version or '(unset)'} -> {c.to_version}"
        f"  {c.action} by {c.by}: {c.reason}{gate}",
        markup=False,
    )


@alias_app.command("set")
def alias_set_cmd(
    model: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    version: Annotated[str, typer.Argument(help="A registered version.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")],
    eval_run: Annotated[
        list[str] | None,
        typer.Option("--eval-run", help="An eval run that justified it (repeatable)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Point an alias at a version, without the gate (recorded as such in the ledger)."""
    from drkit.workspace.models import open_registry
    from drkit.workspace.openlineage_out import openlineage_out

    with open_registry(plan) as (registry, loaded):
        change = registry.set_alias(model, alias, version, reason=reason, eval_runs=eval_run or [])
        openlineage_out(loaded, registry.state).alias_moved(registry, change)
    emit(change.to_json(), json_, lambda out: _render_change(out, change))


@alias_app.command("history")
def alias_history_cmd(
    model: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="What each alias named at this time (RFC 3339, or 7d ago)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """The alias ledger (who, when, why, from, to, eval runs); --at: what served at T."""
    from drkit.lineage.registry import parse_when
    from drkit.workspace.models import open_registry

    with open_registry(plan) as (registry, _):
        changes = registry.history(model, alias)
        when = parse_when(at) if at is not None else None
        served = registry.aliases_at(model, when) if when is not None else None
    if served is not None and alias is not None:
        served = {a: v for a, v in served.items() if a == alias}
    data: dict[str, Any] = {"model": model, "history": [c.to_json() for c in changes]}
    if when is not None:
        data["at"] = datetime.fromtimestamp(when, UTC)
        data["served"] = served

    def render(out: Console) -> None:
        if when is not None:
            if not served:
                out.print(f"at {_when(when)} no alias of {model} was set")
            for a, v in sorted((served or {}).items()):
                out.print(f"at {_when(when)} {model}:{a} was {v}")
            return
        if not changes:
            out.print(f"{model} has no alias yet")
        for c in changes:
            _render_change(out, c)

    emit(data, json_, render)


@model_app.command("promote")
def promote_cmd(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str, typer.Argument(help="The version to promote.")],
    to: Annotated[str, typer.Option("--to", help="The alias to move, e.g. champion.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (default: the gate's).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="How much lower a metric may be.")
    ] = 0.0,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Move an alias to a version if the eval gate finds no regression (else exit 1)."""
    from drkit.workspace.models import GateRefused, eval_gate, open_registry, promote
    from drkit.workspace.openlineage_out import openlineage_out

    with open_registry(plan) as (registry, loaded):
        try:
            change, result = promote(
                registry, eval_gate(registry.state, tolerance), model, version, to, reason=reason
            )
        except GateRefused as exc:
            emit({"promoted": False, "gate": exc.result.to_json()}, json_, lambda out: None)
            _render_gate(exc.result)
            raise
        openlineage_out(loaded, registry.state).alias_moved(registry, change)
    data = {"promoted": True, "change": change.to_json(), "gate": result.to_json()}

    def render(out: Console) -> None:
        _render_change(out, change)

    emit(data, json_, render)


def _render_gate(result: Any) -> None:
    from drkit.cli.common import err_console

    for name, m in result.metrics.items():
        err_console.print(
            f"  {name}: {m['candidate']:.4g} vs {m['baseline']:.4g} ({m['delta']:+.4g})",
            markup=False,
        )


@model_app.command("rollback")
def rollback_cmd(
    model: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[
        str | None, typer.Option("--alias", help="The alias to roll back (default: its only one).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (default: the gate's).")
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Move an alias to the newest earlier version that passes the eval gate."""
    from drkit.errors import UsageError
    from drkit.workspace.models import eval_gate, open_registry, rollback
    from drkit.workspace.openlineage_out import openlineage_out

    with open_registry(plan) as (registry, loaded):
        if alias is None:
            names = sorted(registry.aliases_at(model))
            if len(names) != 1:
                raise UsageError(
                    f"{model} has {len(names)} aliases: say which with --alias",
                    hint="aliases: " + (", ".join(names) or "none"),
                )
            alias = names[0]
        change, result, skipped = rollback(
            registry, eval_gate(registry.state), model, alias, reason=reason
        )
        openlineage_out(loaded, registry.state).alias_moved(registry, change)
    data = {
        "change": change.to_json(),
        "gate": result.to_json(),
        "skipped": [s.to_json() for s in skipped],
    }

    def render(out: Console) -> None:
        for s in skipped:
            out.print(f"skipped {model}@{s.candidate}: {s.reason}", markup=False)
        _render_change(out, change)

    emit(data, json_, render)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app)
