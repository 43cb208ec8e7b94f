"""``drkit snapshot create|restore|export|leftovers`` and ``drkit verify``: vector-store snapshots.

Thin shell over :mod:`drkit.replication.vectors`. The repository is found as for the
``drkit repo`` commands (``--repo`` / ``DRKIT_REPO`` / the plan's primary; password from
``DRKIT_PASSWORD(_FILE)`` or the plan).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drkit.cli.backup_cmd import render_restore, render_results
from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_access import RepoOption
from drkit.errors import CheckFailed, UsageError
from drkit.workspace.access import load_plan_if_any, opened_repository

snapshot_app = typer.Typer(
    name="snapshot",
    help="Vector-store snapshots: create, restore into any engine, export as Parquet.",
    no_args_is_help=True,
)


@snapshot_app.command("create")
def create_cmd(
    target: Annotated[str, typer.Argument(help="A plan vector-store COMPONENT or an engine URL.")],
    collection: Annotated[
        list[str] | None, typer.Option("--collection", help="Collection (repeatable).")
    ] = None,
    component: Annotated[
        str | None, typer.Option("--component", "-c", help="Component name for a URL.")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not use the parent snapshot.")] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Snapshot collections of a vector store (incremental against the last snapshot).

    The same as ``drkit backup TARGET``, refused for anything but a vector store.
    """
    from drkit.workspace.openlineage_out import openlineage_out
    from drkit.workspace.protect import backup_each, backup_jobs

    loaded = load_plan_if_any(plan)
    jobs, _ = backup_jobs(loaded, [target], component=component, collections=list(collection or []))
    if jobs[0].kind != "vectors":
        raise UsageError(
            f"{target!r} is neither a vector store of the plan nor a vector store URL",
            hint="use a plan component name, or a URL like qdrant+local:///path or "
            "postgresql://user@host:5432/db; `drkit backup` snapshots files",
        )
    with opened_repository(repo, plan) as r:
        results = backup_each(
            r, jobs, tags=tuple(tag or ()), full=full, lineage=openlineage_out(loaded)
        )
    render_results(results, [], json_)


@snapshot_app.command("restore")
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")],
    to: Annotated[
        str, typer.Option("--to", help="A plan vector-store COMPONENT or an engine URL.")
    ],
    collection: Annotated[
        str | None, typer.Option("--collection", help="Target collection name.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace the existing collection (verified, swapped in)."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Write nothing; show what the restore would do and what the target could "
            "not carry.",
        ),
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Restore a vector snapshot into any engine, atomically (= ``drkit restore``)."""
    from drkit.workspace.protect import restore_snapshot, vector_target

    loaded = load_plan_if_any(plan)
    vector_target(loaded, to)  # refuse a non-vector target before opening anything
    with opened_repository(repo, plan) as r:
        res = restore_snapshot(
            r,
            snapshot,
            to,
            plan=loaded,
            collection=collection,
            replace=replace,
            dry_run=dry_run,
        )
    render_restore(res, json_)


@snapshot_app.command("export")
def export_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")],
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory.")],
    format_: Annotated[str, typer.Option("--format", help="Output format.")] = "parquet",
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Write a vector snapshot's records as Parquet (readable by pyarrow and DuckDB)."""
    from drkit.replication.vectors import export_parquet

    if format_ != "parquet":
        raise UsageError(f"unknown --format {format_!r}", hint="--format parquet")
    with opened_repository(repo, plan) as r:
        rep = export_parquet(r, r.find_snapshot(snapshot), directory)
    emit(
        {
            "snapshot": rep.snapshot,
            "directory": rep.directory,
            "files": rep.files,
            "records": rep.records,
            "bytes": rep.bytes,
        },
        json_,
        lambda con: con.print(
            f"exported {rep.records} records of snapshot {rep.snapshot[:8]} into {rep.directory}"
        ),
    )


@snapshot_app.command("leftovers")
def leftovers_cmd(
    target: Annotated[str, typer.Argument(help="A plan vector-store COMPONENT or an engine URL.")],
    remove: Annotated[
        bool, typer.Option("--remove", help="Drop them (no restore may be running).")
    ] = False,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """List (or remove) drkit's temporary collections that killed runs left in an engine.

    A restore, restore test or drill that was killed leaves ``NAME_drkit_tmp_XXXXXXXX``
    collections with partial rows; the next run for the same name removes its own.
    """
    from drkit.connectors.vectorstore.registry import open_vector_store
    from drkit.replication.vectors import leftovers
    from drkit.workspace.protect import vector_target

    url, _ = vector_target(load_plan_if_any(plan), target)
    with open_vector_store(url, create=False) as store:
        found = leftovers(store)
        for name in found if remove else []:
            store.drop(name, missing_ok=True)

    def render(con: Console) -> None:
        if not found:
            con.print(f"no drkit leftovers in {url}")
        for name in found:
            con.print(f"{'removed' if remove else 'left over'}: {name}")
        if found and not remove:
            con.print(f"{len(found)} leftover collection(s); remove them with --remove")

    emit({"target": url, "leftovers": found, "removed": found if remove else []}, json_, render)


def verify_cmd(
    component: Annotated[str, typer.Argument(help="A plan component.")],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Restore test: restore the newest snapshot into scratch, check it, record the RTO."""
    from drkit.workspace.workspace import Workspace

    with Workspace.load(plan) as ws, opened_repository(repo, plan) as r:
        results = ws.restore_test(component, repo=r)

    def render(con: Console) -> None:
        for res in results:
            verdict = "passed" if res.ok else "FAILED"
            con.print(f"{res.label}: restore test {verdict} in {res.duration_s} s ({res.summary})")
            for p in res.problems:
                con.print(f"  [red]{p}[/]")
            for n in res.notes:
                con.print(f"  [yellow]{n}[/]")

    emit([res.to_json() for res in results], json_, render)
    failed = [r.label for r in results if not r.ok]
    if failed:
        raise CheckFailed(f"restore test failed: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app, name="snapshot")
    app.command("verify")(verify_cmd)
