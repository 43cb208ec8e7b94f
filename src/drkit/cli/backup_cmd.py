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
from rich.markup import escape
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit, err_console
from drkit.cli.repo_access import (
    RepoOption,
    Terminated,
    human_size,
    progress_bar,
    sigterm_exits,
    tree_size,
)
from drkit.workspace.access import load_plan_if_any, opened_repository


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
    before: set[str] = set()
    written: list[str] = []

    def left() -> str:
        done = [d[:8] for d in written]
        return (
            f"{len(done)} snapshot(s) written before it"
            + (f" ({', '.join(done)})" if done else "")
            + "; the rest was not backed up, and the data of the unfinished snapshot is "
            "removed by the next `drkit prune`"
        )

    with sigterm_exits("backup", left), opened_repository(repo, plan) as r:
        jobs, skipped = backup_jobs(
            loaded,
            list(targets or []),
            component=component,
            collections=list(collection or []),
            repo=r,
            all_components=all_,
        )
        before = set(r.snapshot_ids())
        try:
            items = run_backup(
                r, jobs, tags=tuple(tag or ()), full=full, progress=_job_progress(json_)
            )
        except Terminated:
            # the repository lock was released on the way out (backup_path's context)
            written.extend(sorted(set(r.snapshot_ids()) - before))
            raise
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
                + (f"{sm['fifos']} FIFOs, " if sm.get("fifos") else "")
                + f"{human_size(sm['bytes'])}, {human_size(sm['new_bytes_stored'])} new stored, "
                f"{sm['duration_s']} s"
            )
            if sm.get("skipped"):
                shown = escape(", ".join(sm.get("skipped_paths", [])))
                out.print(
                    f"[yellow]warning:[/] skipped {sm['skipped']} special file(s) (sockets, "
                    f"devices: not data): {shown}",
                    markup=True,
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
        if res.kind == "vectors":
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
