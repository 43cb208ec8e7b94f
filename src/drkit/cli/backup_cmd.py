"""``drkit backup``, ``snapshots``, ``restore``: thin shells over :mod:`drkit.workspace.protect`
and :mod:`drkit.repository` (repository access: :mod:`drkit.cli.repo_access`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
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
from drkit.errors import DrkitError, UsageError
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
        bool,
        typer.Option(
            "--full",
            help="Vector stores and harnesses: do not use the parent snapshot.",
        ),
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="A versioned dataset: the label of this version (default: vN+1)."
        ),
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Snapshot plan components (default: those due), PATHs, or store URLs.

    Every component is attempted even when an earlier one fails; one line per result,
    failures last; exit 1 when any failed or wrote nothing (2 when all were bad input).
    """
    from drkit.workspace.openlineage_out import openlineage_out
    from drkit.workspace.protect import backup_jobs

    loaded = load_plan_if_any(plan)
    left = _LeftOver()
    with sigterm_exits("backup", left.say), opened_repository(repo, plan) as r:
        jobs, skipped = backup_jobs(
            loaded,
            list(targets or []),
            component=component,
            collections=list(collection or []),
            repo=r,
            all_components=all_,
        )
        results = _run_jobs(
            r,
            jobs,
            skipped,
            left,
            tags=tuple(tag or ()),
            full=full,
            version=version,
            json_=json_,
            lineage=openlineage_out(loaded),
        )
    render_results(results, skipped, json_)


@dataclass
class _LeftOver:
    """What a terminated backup leaves: the snapshots written before it, the jobs not run."""

    written: list[str] = field(default_factory=list)
    not_done: list[str] = field(default_factory=list)

    def say(self) -> str:
        done = [d[:8] for d in self.written]
        return (
            f"{len(done)} snapshot(s) written before it"
            + (f" ({', '.join(done)})" if done else "")
            + (f"; not backed up: {', '.join(self.not_done)}" if self.not_done else "")
            + "; the data of the unfinished snapshot is removed by the next `drkit prune`"
        )


def _run_jobs(
    r: Any,
    jobs: list[Any],
    skipped: list[Any],
    left: _LeftOver,
    *,
    tags: tuple[str, ...],
    full: bool,
    version: str | None,
    json_: bool,
    lineage: Any = None,
) -> list[Any]:
    """Every job's result; on Ctrl-C what was written is shown first, on SIGTERM it is
    noted in ``left`` (then the interruption goes on)."""
    from drkit.workspace.protect import backup_each

    before = set(r.snapshot_ids())
    results: list[Any] = []
    try:
        backup_each(
            r,
            jobs,
            tags=tags,
            full=full,
            progress=_job_progress(json_),
            version=version,
            into=results,
            lineage=lineage,
        )
    except KeyboardInterrupt:
        # say what was written before the interruption, then stop (exit 130)
        not_run = [j.component for j in jobs[len(results) :]]
        with contextlib.suppress(DrkitError):
            render_results(results, skipped, json_)
        err_console.print(
            f"interrupted: not backed up: {', '.join(not_run)}", markup=False, soft_wrap=True
        )
        raise
    except Terminated:
        # the repository lock was released on the way out (backup_path's context)
        left.written.extend(sorted(set(r.snapshot_ids()) - before))
        left.not_done.extend(j.component for j in jobs[len(results) :])
        raise
    return results


def _job_progress(json_: bool) -> Callable[[Any], contextlib.AbstractContextManager[Any]]:
    def bar(job: Any) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        if job.kind == "files":
            return progress_bar(json_, tree_size(Path(job.source)), f"backup {job.component}")
        return progress_bar(json_, None, f"backup {job.component}")

    return bar


def _item_line(item: Any) -> str:
    s, sm = item.snapshot, item.snapshot.summary
    if item.job.kind == "vectors":
        st = item.stats
        return (
            f"snapshot {s.short_id} of {s.component}/{item.collection}: "
            f"{st['records']} records (+{st['added']} ~{st['changed']} -{st['deleted']}), "
            f"{human_size(st['bytes_stored'])} new stored, {sm['duration_s']} s"
        )
    if item.job.kind == "mlflow":
        m = s.meta
        return (
            f"snapshot {s.short_id} of {s.component}: MLflow registry, {m['models']} models, "
            f"{m['versions']} versions, {m['aliases']} aliases, {m['artifact_files']} artifact "
            f"files ({human_size(m['artifact_bytes'])}), {human_size(sm['new_bytes_stored'])} "
            "new stored"
        )
    if item.job.kind == "git":
        m = s.meta
        how = "full" if m.get("full") else "incremental"
        what = "bundle" if m.get("bundle") else "(no new commit)"
        return (
            f"snapshot {s.short_id} of {s.component}: git, {len(m.get('refs', {}))} refs, "
            f"HEAD {str(m.get('head_commit'))[:12]}, {how} {what}, {human_size(sm['bytes'])}, "
            f"{human_size(sm['new_bytes_stored'])} new stored"
        )
    version = f" version {s.meta['version']}" if s.meta.get("version") else ""
    return (
        f"snapshot {s.short_id} of {s.component}{version}: {sm['files']} files, "
        + (f"{sm['fifos']} FIFOs, " if sm.get("fifos") else "")
        + f"{human_size(sm['bytes'])}, {human_size(sm['new_bytes_stored'])} new stored, "
        f"{sm['duration_s']} s"
    )


def render_results(results: list[Any], skipped: list[Any], json_: bool) -> None:
    """Print one line per result of ``backup_each`` (failures last, with their hint) and
    exit 1 when any failed or wrote nothing (2 when every one of those was bad input)."""
    done = [r for r in results if r.status == "ok"]
    nothing = [r for r in results if r.status == "nothing"]
    failed = [r for r in results if r.status == "failed"]

    def render(out: Console) -> None:
        for r in done:
            for item in r.items:
                out.print(_item_line(item), markup=False, soft_wrap=True)
                if item.warning:
                    out.print(f"[yellow]warning:[/] {escape(item.warning)}", markup=True)
                skipped_files = item.snapshot.summary.get("skipped")
                if skipped_files:
                    shown = escape(", ".join(item.snapshot.summary.get("skipped_paths", [])))
                    out.print(
                        f"[yellow]warning:[/] skipped {skipped_files} special file(s) "
                        f"(sockets, devices: not data): {shown}",
                        markup=True,
                    )
        for r in nothing:
            out.print(f"{r.job.component}: {r.message}", markup=False, soft_wrap=True)
        for r in failed:  # errors go to stderr (as restic's), results stay on stdout
            err_console.print(
                f"[red]FAILED[/] {escape(r.job.component)}: {escape(r.message)}",
                markup=True,
                soft_wrap=True,
            )
            hint = getattr(r.error, "hint", None)
            if hint:
                err_console.print(f"  Try: {hint}", markup=False, soft_wrap=True)
        if not results:
            out.print(
                "nothing due to back up (--all backs up every component)"
                if skipped
                else "nothing to back up"
            )

    # components not due go to stderr, so that --json stays a list of results
    for sk in skipped:
        err_console.print(f"{sk.component}: not due, next run {sk.next_due}", markup=False)
    emit([e for r in [*done, *nothing, *failed] for e in r.to_json()], json_, render)
    if not results and not skipped:  # nothing was asked of it: never a silent exit 0
        raise UsageError(
            "nothing to back up: no component of the plan has anything drkit backs up",
            hint="give components a `path` (or add vector stores), or back up a PATH",
        )
    bad = [r for r in [*nothing, *failed] if r.exit_code != 0]
    if bad:
        what = ", ".join(f"{r.job.component} ({r.status})" for r in bad)
        message = f"{len(bad)} of {len(results)} backup(s) protected nothing: {what}"
        if all(r.exit_code == 2 for r in bad):
            raise UsageError(message, hint="fix the input named above")
        raise DrkitError(message, hint="see the lines above; the other components were backed up")


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
        if not snaps:  # an empty listing says so, and what would fill it
            what = f" of component {component}" if component else ""
            out.print(f"no snapshots{what} yet: run `drkit backup`", markup=False)
            return
        t = Table("id", "time", "component", "source", "tags", "size", "verified")
        for s in snaps:
            version = s.meta.get("version")  # a named version of a versioned dataset
            t.add_row(
                s.short_id,
                s.time[:19].replace("T", " "),
                f"{s.component}@{version}" if version else s.component,
                s.source,
                ",".join(s.tags),
                human_size(s.summary.get("bytes", 0)),
                "yes" if s.id in verified else "",
            )
        out.print(t)

    emit([{**s.to_json(), "verified": s.id in verified} for s in snaps], json_, render)


def restore_cmd(
    snapshot: Annotated[
        str,
        typer.Argument(help="Snapshot id, unique prefix, 'latest', or DATASET@VERSION."),
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Files: a new (or empty) DIR. Vectors: a plan vector-store COMPONENT or an "
            "engine URL. MLflow registries: a tracking URI or a plan mlflow_registries name.",
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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Vectors and MLflow registries: write nothing; show what the restore would "
            "do and what the target could not carry.",
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
            dry_run=dry_run,
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
        if res.kind == "vectors" and res.dry_run:
            p = res.plan or {}
            verb = "replace" if p.get("exists") else "create"
            out.print(
                f"dry run, nothing written: snapshot {res.snapshot[:8]} ({res.records} "
                f"records, {p.get('source_engine') or 'unknown engine'}) would {verb} "
                f"{res.collection} at {res.target} ({p.get('target_engine')})"
            )
            for name in p.get("leftovers") or []:
                out.print(f"  would first remove {name} (left by an interrupted drkit run)")
            if p.get("replace") and p.get("swap"):
                out.print(f"  the swap under the live name would be {p.get('swap')}")
        elif res.kind == "vectors" and res.replaced and res.replaced["action"] == "replaced":
            r = res.replaced
            how = {
                "transaction": "in one transaction",
                "exchange": "by one exchange of directories",
                "alias": "by moving the alias",
                "renames": "by two renames",
            }
            out.print(
                f"replaced {res.collection} at {res.target} with snapshot {res.snapshot[:8]} "
                f"({res.records} records) in {res.duration_s} s: restored beside it, count and "
                f"every checksum verified, swapped in {how.get(r['swap_method'], '')}"
                f" ({r['swap']}); the previous collection (kept as {r['old']} until then) was "
                "dropped"
            )
        elif res.kind == "vectors":
            out.print(
                f"restored snapshot {res.snapshot[:8]}: {res.records} records into "
                f"{res.collection} at {res.target} in {res.duration_s} s"
            )
        elif res.kind == "mlflow":
            _render_registry(out, res)
        elif res.kind == "git":
            out.print(
                f"restored snapshot {res.snapshot[:8]}: git repository with {res.refs} refs "
                f"(HEAD {str(res.commit)[:12]}) into {res.target} in {res.duration_s} s"
            )
        else:
            out.print(
                f"restored snapshot {res.snapshot[:8]}: {res.files} files, "
                f"{human_size(res.bytes or 0)} into {res.target} in {res.duration_s} s"
            )
        if res.kind in ("vectors", "mlflow"):
            for note in res.not_carried:  # worked out before anything was written
                out.print(f"  not carried: {note}")

    emit(res.to_json(), json_, render)


def _render_registry(out: Console, res: Any) -> None:
    models = (res.plan or {}).get("models", [])
    versions = sum(len(m["versions"]) for m in models)
    what = f"{len(models)} registered models, {versions} versions"
    if res.dry_run:
        out.print(
            f"dry run, nothing written: snapshot {res.snapshot[:8]} would create {what} and "
            f"upload {res.files} artifact files ({human_size(res.bytes or 0)}) at {res.target}:",
            markup=False,
            soft_wrap=True,
        )
        for m in models:
            aliases = ", ".join(f"{a}->{v}" for a, v in m["aliases"].items()) or "none"
            holes = f", placeholders {m['placeholders']}" if m["placeholders"] else ""
            line = f"  {m['name']}: versions {m['versions']}{holes}, aliases {aliases}"
            out.print(line, markup=False, soft_wrap=True)
        return
    out.print(
        f"restored snapshot {res.snapshot[:8]}: {what}, {res.files} artifact files "
        f"({human_size(res.bytes or 0)}) into MLflow at {res.target} in {res.duration_s} s; "
        "read back and compared, artifacts byte for byte",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("snapshots")(snapshots_cmd)
    app.command("restore")(restore_cmd)
