"""``drkit repo init|key|unlock``, ``backup``, ``snapshots``, ``restore``, ``check``,
``forget``, ``copy``, ``repair``: thin shells over :mod:`drkit.repository`.

The repository is ``--repo URL`` or ``DRKIT_REPO``, else the plan's primary. The
password comes from ``DRKIT_PASSWORD`` or ``DRKIT_PASSWORD_FILE`` (else the plan's
repository entry), never from the command line.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit, err_console
from drkit.errors import CheckFailed, InputError, SecretMissing, UsageError

if TYPE_CHECKING:  # the repository stack loads when a command runs, not at CLI start-up
    from drkit.connectors.objectstore.base import ObjectStore
    from drkit.repository import KdfParams, Repository
    from drkit.repository.retention import Policy

RepoOption = Annotated[
    str | None,
    typer.Option(
        "--repo", envvar="DRKIT_REPO", help="Repository URL (default: the plan's primary)."
    ),
]

repo_app = typer.Typer(
    name="repo", help="Create and manage backup repositories.", no_args_is_help=True
)
key_app = typer.Typer(name="key", help="Passwords (keys) of a repository.", no_args_is_help=True)
repo_app.add_typer(key_app, name="key")


# --- plumbing ----------------------------------------------------------------------------


def _open_store(url: str) -> ObjectStore:
    try:
        from drkit.connectors.objectstore.registry import open_store
    except ImportError:  # the registry is optional for plain paths
        from drkit.connectors.objectstore.local import LocalStore

        if "://" in url and not url.startswith("file://"):
            raise UsageError(f"cannot open {url}: no object-store registry") from None
        return LocalStore(url.removeprefix("file://"))
    return open_store(url)


def _load_plan(plan: Path) -> Any:
    """The plan at ``plan``, or None when there is no such file (commands work without one)."""
    if not plan.exists():
        return None
    from drkit.plan.loader import load_plan

    return load_plan(plan)


def _explicit_password(env_var: str, file_var: str) -> str | None:
    if os.environ.get(env_var):
        return os.environ[env_var]
    if os.environ.get(file_var):
        path = Path(os.environ[file_var])
        try:
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"{file_var}: cannot read {path}: {exc.strerror}") from exc
    return None


def _password_from(env_var: str, file_var: str, loaded: Any = None, plan_repo: Any = None) -> str:
    """``env_var`` / ``file_var``, else the plan repository's own source (the workspace's)."""
    password = _explicit_password(env_var, file_var)
    if password is not None:
        return password
    if plan_repo is not None:
        from drkit.plan.secrets import repository_password

        return repository_password(loaded, plan_repo)
    raise SecretMissing(
        f"no repository password: set {env_var} or {file_var}",
        hint=f"export {env_var}=... (passwords are never taken from the command line)",
    )


def _other_password(prefix: str) -> str:
    """``DRKIT_<prefix>_PASSWORD`` / ``..._FILE`` (another repository's), else DRKIT_PASSWORD."""
    try:
        return _password_from(f"DRKIT_{prefix}_PASSWORD", f"DRKIT_{prefix}_PASSWORD_FILE")
    except SecretMissing:
        return _password_from("DRKIT_PASSWORD", "DRKIT_PASSWORD_FILE")


def _credentials(repo_url: str | None, plan: Path) -> tuple[str, str]:
    """The repository URL (``--repo``, else the plan's primary) and its password."""
    loaded = None if repo_url else _load_plan(plan)
    if repo_url:
        url, plan_repo = repo_url, None
    elif loaded is None:
        raise UsageError(
            "no repository given",
            hint="pass --repo URL, set DRKIT_REPO, or run in a directory with drkit.yaml",
        )
    else:
        plan_repo = loaded.repositories.primary
        url = str(plan_repo.url)
    return url, _password_from("DRKIT_PASSWORD", "DRKIT_PASSWORD_FILE", loaded, plan_repo)


def _kdf() -> KdfParams:
    # DRKIT_KDF=fast skips the memory-hard cost, honoured only inside a pytest run so that
    # a stray environment variable can never weaken real keys
    from drkit.repository import KdfParams

    fast = os.environ.get("DRKIT_KDF") == "fast" and "PYTEST_CURRENT_TEST" in os.environ
    return KdfParams.fast() if fast else KdfParams()


@contextlib.contextmanager
def _opened(repo_url: str | None, plan: Path) -> Iterator[Repository]:
    """The repository of ``--repo`` (else the plan's primary), closed after use."""
    url, password = _credentials(repo_url, plan)
    with _repository(url, password) as repo:
        yield repo


@contextlib.contextmanager
def _repository(url: str, password: str, *, init: bool = False) -> Iterator[Repository]:
    """Open the repository at ``url`` (create it first if ``init`` and missing); close it after."""
    from drkit.repository import Repository

    store = _open_store(url)
    if init and not store.exists("config"):
        repo = Repository.init(store, password, kdf=_kdf())
    else:
        repo = Repository.open(store, password)
    try:
        yield repo
    finally:
        repo.close()


@contextlib.contextmanager
def _progress(json_: bool, total: int | None, what: str) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr, only on a terminal and without --json."""
    if json_ or not err_console.is_terminal:
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


# --- repo init / key / unlock --------------------------------------------------------------


@repo_app.command("init")
def repo_init(
    repo: RepoOption = None, plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False
) -> None:
    """Create a new, empty repository."""
    from drkit.repository import Repository

    url, password = _credentials(repo, plan)
    r = Repository.init(_open_store(url), password, kdf=_kdf())
    data = {"repository": r.store.url, "id": r.id, "key": r.key_id}
    r.close()
    emit(data, json_, lambda out: out.print(f"created repository {r.id[:8]} at {r.store.url}"))


@key_app.command("list")
def key_list(
    repo: RepoOption = None, plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False
) -> None:
    """List the keys (passwords) of the repository."""
    with _opened(repo, plan) as r:
        keys = r.list_keys()

    def render(out: Console) -> None:
        t = Table("", "id", "created", "user", "host")
        for k in keys:
            t.add_row("*" if k.current else "", k.id[:12], k.created, k.user, k.host)
        out.print(t)

    emit([asdict(k) for k in keys], json_, render)


@key_app.command("add")
def key_add(
    repo: RepoOption = None, plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False
) -> None:
    """Add a password (from DRKIT_NEW_PASSWORD or DRKIT_NEW_PASSWORD_FILE)."""
    new = _password_from("DRKIT_NEW_PASSWORD", "DRKIT_NEW_PASSWORD_FILE")
    with _opened(repo, plan) as r:
        kid = r.add_key(new, kdf=_kdf())
    emit({"added": kid}, json_, lambda out: out.print(f"added key {kid[:12]}"))


@key_app.command("remove")
def key_remove(
    key_id: Annotated[str, typer.Argument(help="Key id or unique prefix.")],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Remove a key; refuses to remove the last one."""
    with _opened(repo, plan) as r:
        kid = r.remove_key(key_id)
    emit({"removed": kid}, json_, lambda out: out.print(f"removed key {kid[:12]}"))


@repo_app.command("unlock")
def repo_unlock(
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every lock, not only stale ones.")
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Remove stale locks (expired, or held by a dead process on this host)."""
    with _opened(repo, plan) as r:
        n = r.remove_stale_locks(all_locks=all_)
    emit({"removed": n}, json_, lambda out: out.print(f"removed {n} lock(s)"))


# --- backup / snapshots / restore ------------------------------------------------------------


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

    loaded = _load_plan(plan)
    with _opened(repo, plan) as r:
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
            return _progress(json_, _tree_size(Path(job.source)), f"backup {job.component}")
        return _progress(json_, None, f"backup {job.component}")

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
                    f"{_human(st['bytes_stored'])} new stored, {sm['duration_s']} s"
                )
                if item.warning:
                    out.print(f"[yellow]warning:[/] {item.warning}", markup=True)
                continue
            out.print(
                f"snapshot {s.short_id} of {s.component}: {sm['files']} files, "
                f"{_human(sm['bytes'])}, {_human(sm['new_bytes_stored'])} new stored, "
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
    with _opened(repo, plan) as r:
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
                _human(s.summary.get("bytes", 0)),
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

    loaded = _load_plan(plan)
    with _opened(repo, plan) as r:
        res = restore_snapshot(
            r,
            snapshot,
            to,
            plan=loaded,
            component=component,
            collection=collection,
            progress=lambda snap: _progress(
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
                f"{_human(res.bytes or 0)} into {res.target} in {res.duration_s} s"
            )

    emit(res.to_json(), json_, render)


# --- check / forget / copy / repair --------------------------------------------------------------

_SUBSET = re.compile(r"^(\d+)/(\d+)$")


def check_cmd(
    read_data: Annotated[bool, typer.Option("--read-data", help="Re-hash every pack.")] = False,
    read_data_subset: Annotated[
        str | None, typer.Option("--read-data-subset", help="Re-hash part N of T, e.g. 1/5.")
    ] = None,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Verify the repository's structure (and data); exit 1 when damage is found."""
    from drkit.repository.maintenance import check

    subset = None
    if read_data_subset is not None:
        m = _SUBSET.match(read_data_subset)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise UsageError(
                f"--read-data-subset {read_data_subset!r}: expected N/T with 1 <= N <= T, e.g. 2/5"
            )
        subset = (int(m.group(1)), int(m.group(2)))
    with _opened(repo, plan) as r:
        total = sum(r.list_packs().values()) if (read_data or subset) else None
        with _progress(json_, total, "check") as advance:
            report = check(r, read_data=read_data, subset=subset, progress=advance)

    def render(out: Console) -> None:
        for w in report.warnings:
            out.print(f"[yellow]warning:[/] {w}", markup=True)
        for e in report.errors:
            out.print(f"[red]error:[/] {e}", markup=True)
        out.print(
            f"{report.snapshots} snapshots, {report.packs} packs, {report.packs_read} packs read, "
            f"{report.blobs_read} blobs verified: " + ("no errors" if report.ok else "DAMAGED")
        )

    emit(report.to_json(), json_, render)
    if not report.ok:
        raise CheckFailed(
            f"check found {len(report.errors)} problem(s), first: {report.errors[0]}",
            hint="run `drkit repair --from REPLICA` to heal from a replica",
        )


def _retention_from_plan(plan: Path) -> dict[str, Policy]:
    from drkit.repository.retention import Policy

    loaded = _load_plan(plan)
    out: dict[str, Policy] = {}
    for _, comp in loaded.components() if loaded is not None else ():
        ret = comp.retention
        if ret is not None:
            out[comp.name] = Policy(
                keep_last=ret.keep_last or 0,
                keep_hourly=ret.keep_hourly or 0,
                keep_daily=ret.keep_daily or 0,
                keep_weekly=ret.keep_weekly or 0,
                keep_monthly=ret.keep_monthly or 0,
                keep_yearly=ret.keep_yearly or 0,
                keep_within=ret.keep_within,
            )
    return out


def forget_cmd(
    keep_last: Annotated[int, typer.Option("--keep-last")] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly")] = 0,
    keep_within: Annotated[str | None, typer.Option("--keep-within", help="e.g. 7d")] = None,
    keep_tag: Annotated[list[str] | None, typer.Option("--keep-tag")] = None,
    component: Annotated[list[str] | None, typer.Option("--component", "-c")] = None,
    prune_: Annotated[bool, typer.Option("--prune", help="Prune unreferenced data after.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Forget snapshots by retention policy (restic keep-* semantics, per component)."""
    from drkit.repository.maintenance import forget, prune
    from drkit.repository.retention import Policy
    from drkit.types import parse_duration

    try:
        within = parse_duration(keep_within) if keep_within else None
    except ValueError as exc:
        raise UsageError(f"--keep-within: {exc}") from exc
    policy = Policy(
        keep_last=keep_last,
        keep_hourly=keep_hourly,
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        keep_monthly=keep_monthly,
        keep_yearly=keep_yearly,
        keep_within=within,
        keep_tags=tuple(keep_tag or ()),
    )
    with _opened(repo, plan) as r:
        if policy.empty():
            per_component = _retention_from_plan(plan)
            if not per_component:
                raise UsageError(
                    "no retention policy given",
                    hint="pass --keep-last/--keep-daily/... or define retention in the plan",
                )
            results = [
                forget(r, pol, components=[name], dry_run=dry_run)
                for name, pol in per_component.items()
                if component is None or name in component
            ]
        else:
            results = [forget(r, policy, components=component, dry_run=dry_run)]
        pruned = None
        if prune_:
            pruned = prune(r, dry_run=dry_run)
    keep: list[dict[str, Any]] = [k for res in results for k in res.to_json()["keep"]]
    remove: list[dict[str, Any]] = [k for res in results for k in res.to_json()["remove"]]
    data = {
        "dry_run": dry_run,
        "keep": keep,
        "remove": remove,
        "prune": pruned.to_json() if pruned else None,
    }

    def render(out: Console) -> None:
        verb = "would remove" if dry_run else "removed"
        for d in keep:
            why = ", ".join(d["reasons"])
            out.print(f"keep   {d['id'][:8]} {d['component']} {d['time'][:19]} ({why})")
        for d in remove:
            out.print(f"{verb} {d['id'][:8]} {d['component']} {d['time'][:19]}")
        if pruned:
            out.print(
                f"prune: {pruned.packs_deleted} packs deleted, {pruned.packs_repacked} repacked, "
                f"{_human(pruned.bytes_freed)} freed"
            )

    emit(data, json_, render)


def copy_cmd(
    to: Annotated[str, typer.Option("--to", help="Destination repository URL.")],
    init: Annotated[
        bool, typer.Option("--init", help="Create the destination if missing.")
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Copy snapshots missing in another repository (incremental, verified after).

    The destination's password is DRKIT_TO_PASSWORD / DRKIT_TO_PASSWORD_FILE, else the same.
    """
    from drkit.repository.replica import copy

    with (
        _opened(repo, plan) as src,
        _repository(to, _other_password("TO"), init=init) as dst,
        _progress(json_, None, "copy") as advance,
    ):
        res = copy(src, dst, progress=advance)
    emit(
        res.to_json(),
        json_,
        lambda out: out.print(
            f"copied {len(res.snapshots_copied)} snapshots "
            f"({res.snapshots_present} already there), {res.blobs_copied} blobs, "
            f"{_human(res.bytes_copied)}; {res.packs_verified} packs verified"
        ),
    )


def repair_cmd(
    from_: Annotated[str, typer.Option("--from", help="Replica repository URL to heal from.")],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Re-fetch missing or corrupt objects from a replica; exit 1 if some cannot be healed.

    The replica's password is DRKIT_FROM_PASSWORD / DRKIT_FROM_PASSWORD_FILE, else the same.
    """
    from drkit.repository.replica import repair

    with (
        _opened(repo, plan) as r,
        _repository(from_, _other_password("FROM")) as replica,
        _progress(json_, None, "repair") as advance,
    ):
        res = repair(r, replica, progress=advance)
    emit(
        res.to_json(),
        json_,
        lambda out: out.print(
            f"repair: {len(res.damaged_packs)} damaged packs, {res.blobs_refetched} blobs "
            f"re-fetched, {res.blobs_salvaged} salvaged, {len(res.snapshots_refetched)} snapshots "
            f"re-fetched"
            + (f"; UNRECOVERABLE: {', '.join(res.unrecoverable)}" if res.unrecoverable else "")
        ),
    )
    if res.unrecoverable:
        raise CheckFailed(f"{len(res.unrecoverable)} object(s) could not be healed from {from_}")


def register(app: typer.Typer) -> None:
    app.add_typer(repo_app, name="repo")
    app.command("backup")(backup_cmd)
    app.command("snapshots")(snapshots_cmd)
    app.command("restore")(restore_cmd)
    app.command("check")(check_cmd)
    app.command("forget")(forget_cmd)
    app.command("copy")(copy_cmd)
    app.command("repair")(repair_cmd)
