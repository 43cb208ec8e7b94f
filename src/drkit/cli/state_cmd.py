"""``drkit state backup|restore``: drkit's own state, snapshotted into the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_access import RepoOption

state_app = typer.Typer(
    help="drkit's own state (events, verifications, drill journals) as data.",
    no_args_is_help=True,
)


def _state_path(plan: Path) -> Path | str:
    """``$DRKIT_STATE`` (a file or a ``postgresql://`` URL), else the plan's ``state.url``
    or ``state_dir`` (a plan is optional), else ``./.drkit/state.db``."""
    from drkit.state.store import state_location
    from drkit.workspace.access import load_plan_if_any

    return state_location(load_plan_if_any(plan))


@state_app.command("backup", epilog="Example: drkit state backup --repo replica")
def backup_cmd(
    repo: RepoOption = None, plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False
) -> None:
    """Snapshot drkit's state database into the repository (a consistent online copy).

    Exit 2 when there is no state to back up. `drkit agent run` does this on its own.
    """
    from drkit.agent.state_backup import STATE_COMPONENT, snapshot_state
    from drkit.workspace.access import opened_repository

    path = _state_path(plan)
    with opened_repository(repo, plan) as r:
        done = snapshot_state(r, path)

    def render(out: Console) -> None:
        out.print(
            f"state {done.source} snapshotted as {STATE_COMPONENT} {done.snapshot.short_id} "
            f"({done.events} event(s))",
            markup=False,
            soft_wrap=True,
        )

    emit(done.to_json(), json_, render)


@state_app.command(
    "restore", epilog="Example: DRKIT_PASSWORD=... drkit state restore --repo replica"
)
def restore_cmd(
    snapshot: Annotated[
        str | None,
        typer.Argument(help="A state snapshot id (default: the newest state snapshot)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing state (default: refuse).")
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Rebuild a lost drkit state from a repository and its key alone (no plan needed).

    Exit 2 when the repository holds no state snapshot, or a state exists (without --force).
    """
    from drkit.agent.state_backup import restore_state
    from drkit.workspace.access import opened_repository

    path = _state_path(plan)
    where = repo or "(the plan's primary)"
    with opened_repository(repo, plan) as r:
        done = restore_state(r, path, where=where, force=force, snapshot=snapshot)

    def render(out: Console) -> None:
        out.print(
            f"state restored to {done.path} from {done.snapshot.short_id} "
            f"({done.snapshot.time}, {done.events} event(s))"
            + ("; the previous state was replaced" if done.replaced else ""),
            markup=False,
            soft_wrap=True,
        )

    emit(done.to_json(), json_, render)


def register(app: typer.Typer) -> None:
    app.add_typer(state_app, name="state")
