"""``drkit snapshot create|restore|export`` and ``drkit verify``: vector-store snapshots.

Thin shell over :mod:`drkit.replication.vectors`. The repository is found as for the
``drkit repo`` commands (``--repo`` / ``DRKIT_REPO`` / the plan's primary; password from
``DRKIT_PASSWORD(_FILE)`` or the plan).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_cmd import RepoOption
from drkit.cli.repo_cmd import _opened as opened_repository
from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.registry import is_vector_store_url, open_vector_store
from drkit.errors import CheckFailed, UsageError

snapshot_app = typer.Typer(
    name="snapshot",
    help="Vector-store snapshots: create, restore into any engine, export as Parquet.",
    no_args_is_help=True,
)


def _plan_vector_store(plan: Path, name: str) -> Any | None:
    if not plan.exists():
        return None
    from drkit.plan.loader import load_plan

    loaded = load_plan(plan)
    for vs in loaded.vector_stores:
        if vs.name == name:
            return vs
    return None


@contextlib.contextmanager
def _store(target: str, plan: Path) -> Iterator[tuple[VectorStore, Any | None]]:
    """Open a plan vector-store component or an engine URL."""
    comp = None if is_vector_store_url(target) else _plan_vector_store(plan, target)
    if comp is None and not is_vector_store_url(target):
        raise UsageError(
            f"{target!r} is neither a vector store of the plan nor a vector store URL",
            hint="use a plan component name, or a URL like qdrant+local:///path or "
            "postgresql://user@host:5432/db",
        )
    store = open_vector_store(str(comp.engine) if comp is not None else target)
    try:
        yield store, comp
    finally:
        store.close()


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
    """Snapshot collections of a vector store (incremental against the last snapshot)."""
    from drkit.replication.vectors import snapshot_collection

    results = []
    with _store(target, plan) as (store, comp), opened_repository(repo, plan) as r:
        name = component or (comp.name if comp is not None else None)
        if name is None:
            raise UsageError("a URL needs --component NAME", hint="e.g. --component kb")
        names = list(collection or (comp.collections if comp is not None else []))
        names = names or store.list_collections()
        for coll in names:
            results.append(
                snapshot_collection(
                    r, store, coll, component=name, full=full, tags=tuple(tag or ())
                )
            )
    out = [
        {
            "snapshot": res.snapshot.id,
            "component": res.snapshot.component,
            "collection": res.snapshot.meta["collection"],
            "records": res.records,
            "added": res.added,
            "changed": res.changed,
            "deleted": res.deleted,
            "unchanged": res.unchanged,
            "bytes_stored": res.snapshot.summary["new_bytes_stored"],
            "export_s": res.export_s,
            "pipeline_s": res.pipeline_s,
            "warning": res.warning,
        }
        for res in results
    ]

    def render(con: Console) -> None:
        for o in out:
            con.print(
                f"snapshot {o['snapshot'][:8]} of {o['component']}/{o['collection']}: "
                f"{o['records']} records (+{o['added']} ~{o['changed']} -{o['deleted']}), "
                f"{o['bytes_stored']} bytes stored"
            )
            if o["warning"]:
                con.print(f"[yellow]warning:[/] {o['warning']}")

    emit(out, json_, render)


@snapshot_app.command("restore")
def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")],
    to: Annotated[
        str, typer.Option("--to", help="A plan vector-store COMPONENT or an engine URL.")
    ],
    collection: Annotated[
        str | None, typer.Option("--collection", help="Target collection name.")
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Restore a vector snapshot into any engine, atomically, under a new name."""
    from drkit.replication.vectors import restore_collection

    with _store(to, plan) as (store, _), opened_repository(repo, plan) as r:
        snap = r.find_snapshot(snapshot)
        rep = restore_collection(r, snap, store, collection)
    emit(
        {
            "snapshot": rep.snapshot,
            "target": rep.target,
            "collection": rep.collection,
            "records": rep.records,
            "duration_s": rep.duration_s,
        },
        json_,
        lambda con: con.print(
            f"restored snapshot {rep.snapshot[:8]}: {rep.records} records into "
            f"{rep.collection} at {rep.target} in {rep.duration_s} s"
        ),
    )


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


def verify_cmd(
    component: Annotated[str, typer.Argument(help="A plan component.")],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Restore test: restore the newest snapshot into scratch, check it, record the RTO."""
    from drkit.workspace.workspace import Workspace

    ws = Workspace.load(plan)
    try:
        _verify(ws, component, repo, plan, json_)
    finally:
        ws.close()


def _verify(ws: Any, component: str, repo: str | None, plan: Path, json_: bool) -> None:
    comp = _plan_vector_store(plan, component)
    if comp is None:  # file components: the workspace's restore test
        result = ws.verify(component)
        emit(
            result.to_json(),
            json_,
            lambda con: con.print(
                f"{component}: restore test {'passed' if result.ok else 'FAILED'} "
                f"in {result.duration_s} s"
            ),
        )
        if not result.ok:
            raise CheckFailed(f"restore test of {component} failed")
        return
    from drkit.replication.vectors import vector_snapshots, verify_collection

    reports = []
    with _store(component, plan) as (store, _), opened_repository(repo, plan) as r:
        names = list(comp.collections) or sorted(
            {str(s.meta.get("collection")) for s in vector_snapshots(r, component)}
        )
        if not names:
            raise UsageError(
                f"component {component!r} has no vector snapshots",
                hint=f"drkit snapshot create {component}",
            )
        for coll in names:
            snaps = vector_snapshots(r, component, coll)
            if not snaps:
                raise UsageError(f"no snapshot of {component}/{coll}")
            rep = verify_collection(r, snaps[-1], store)
            ws.state().record_verification(
                component,
                rep.snapshot,
                ok=rep.ok,
                duration_s=rep.duration_s,
                details={"collection": coll, **rep.to_json()},
            )
            reports.append(rep)

    def render(con: Console) -> None:
        for rep in reports:
            verdict = "passed" if rep.ok else "FAILED"
            con.print(
                f"{rep.component}/{rep.collection}: restore test {verdict} in {rep.duration_s} s "
                f"({rep.records_restored}/{rep.records_expected} records, "
                f"top-k overlap {rep.overlap})"
            )
            for p in rep.problems:
                con.print(f"  [red]{p}[/]")

    emit([rep.to_json() for rep in reports], json_, render)
    failed = [f"{r.component}/{r.collection}" for r in reports if not r.ok]
    if failed:
        raise CheckFailed(f"restore test failed: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app, name="snapshot")
    app.command("verify")(verify_cmd)
