"""``drkit backup``, ``snapshots``, ``restore``: thin shells over :mod:`drkit.workspace.protect`
and :mod:`drkit.repository` (repository access: :mod:`drkit.cli.repo_access`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit, err_console
from drkit.cli.repo_access import (
    RepoOption,
    human_size,
    load_plan_if_any,
    opened_repository,
    progress_bar,
    tree_size,
)


def backup_cmd(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="Plan COMPONENTs, PATHs, or object-store / vector-store URLs."),
    ] = None,
    component: Annotated[
        str | None, typer.Option("--component", "-c", help="Component name for a PATH or URL.")
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", help="Vector stores: only this collection (repeatable)."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="No argument: every component, due or not.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Vector stores: do not use the parent snapshot.")
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Snapshot plan components (default: those due), PATHs, or store URLs."""
    from drkit.workspace.protect import backup_jobs, run_backup

    loaded = load_plan_if_any(plan)
    with opened_repository(repo, plan) as r:
        jobs, skipped = backup_jobs(
            loaded,
            list(targets or []),
            component=component,
            collections=list(collection or []),
            repo=r,
            all_components=all_,
        )
        items = run_backup(r, jobs, tags=tuple(tag or ()), full=full, progress=_job_progress(json_))
    render_backup(items, skipped, json_)


def _job_progress(json_: bool) -> Callable[[Any], contextlib.AbstractContextManager[Any]]:
    def bar(job: Any) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        if job.kind == "files":
            return progress_bar(json_, tree_size(Path(job.source)), f"backup {job.component}")
        return progress_bar(json_, None, f"backup {job.component}")

    return bar


def render_backup(items: list[Any], skipped: list[Any], json_: bool) -> None:
    """Print what ``run_backup`` wrote (and what was not due)."""

    def render(out: Console) -> None:
        for item in items:
            s, sm = item.snapshot, item.snapshot.summary
            if item.job.kind == "vectors":
                st = item.stats
                out.print(
                    f"snapshot {s.short_id} of {s.component}/{item.collection}: "
                    f"{st['records']} records (+{st['added']} ~{st['changed']} -{st['deleted']}), "
                    f"{human_size(st['bytes_stored'])} new stored, {sm['duration_s']} s"
                )
                if item.warning:
                    out.print(f"[yellow]warning:[/] {item.warning}", markup=True)
                continue
            out.print(
                f"snapshot {s.short_id} of {s.component}: {sm['files']} files, "
                f"{human_size(sm['bytes'])}, {human_size(sm['new_bytes_stored'])} new stored, "
                f"{sm['duration_s']} s"
            )
        if not items:
            out.print(
                "nothing due to back up (--all backs up every component)"
                if skipped
                else "nothing to back up"
            )

    # components not due go to stderr, so that --json stays a list of snapshots
    for sk in skipped:
        err_console.print(f"{sk.component}: not due, next run {sk.next_due}", markup=False)
    emit([i.to_json() for i in items], json_, render)


def snapshots_cmd(
    component: Annotated[str | None, typer.Option("--component", "-c")] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """List snapshots, oldest first."""
    with opened_repository(repo, plan) as r:
        snaps = r.snapshots(component)
        verified = {v.snapshot for v in r.verifications()}

    def render(out: Console) -> None:
        t = Table("id", "time", "component", "source", "tags", "size", "verified")
        for s in snaps:
            t.add_row(
                s.short_id,
                s.time[:19].replace("T", " "),
                s.component,
                s.source,
                ",".join(s.tags),
                human_size(s.summary.get("bytes", 0)),
                "yes" if s.id in verified else "",
            )
        out.print(t)

    emit([{**s.to_json(), "verified": s.id in verified} for s in snaps], json_, render)


def restore_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Files: a new (or empty) DIR. Vectors: a plan vector-store COMPONENT or an "
            "engine URL.",
        ),
    ],
    collection: Annotated[
        str | None,
        typer.Option("--collection", help="Vectors: the collection to create (default: same)."),
    ] = None,
    component: Annotated[str | None, typer.Option("--component", "-c")] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Vectors: replace the existing collection (restored beside it, verified, "
            "then swapped in).",
        ),
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Restore a snapshot, atomically: a file tree into DIR, a collection into a vector store."""
    from drkit.workspace.protect import restore_snapshot

    loaded = load_plan_if_any(plan)
    with opened_repository(repo, plan) as r:
        res = restore_snapshot(
            r,
            snapshot,
            to,
            plan=loaded,
            component=component,
            collection=collection,
            replace=replace,
            progress=lambda snap: progress_bar(
                json_,
                # vector restores advance by records: no byte total for those
                int(snap.summary.get("bytes", 0)) if snap.kind != "vectors" else None,
                "restore",
            ),
        )
    render_restore(res, json_)


def render_restore(res: Any, json_: bool) -> None:
    def render(out: Console) -> None:
        if res.kind == "vectors" and res.replaced and res.replaced["action"] == "replaced":
            how = "atomically" if res.replaced["atomic"] else "by two renames"
            out.print(
                f"replaced {res.collection} at {res.target} with snapshot {res.snapshot[:8]} "
                f"({res.records} records) in {res.duration_s} s: restored beside it, count and "
                f"every checksum verified, swapped in {how}; the previous collection (kept "
                f"as {res.replaced['old']} until then) was dropped"
            )
        elif res.kind == "vectors":
            out.print(
                f"restored snapshot {res.snapshot[:8]}: {res.records} records into "
                f"{res.collection} at {res.target} in {res.duration_s} s"
            )
        else:
            out.print(
                f"restored snapshot {res.snapshot[:8]}: {res.files} files, "
                f"{human_size(res.bytes or 0)} into {res.target} in {res.duration_s} s"
            )

    emit(res.to_json(), json_, render)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("snapshots")(snapshots_cmd)
    app.command("restore")(restore_cmd)
