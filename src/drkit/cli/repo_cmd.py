"""``drkit repo init|key|unlock``, ``check``, ``forget``, ``copy``, ``repair``: thin
shells over :mod:`drkit.repository` (repository access: :mod:`drkit.cli.repo_access`).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_access import RepoOption, human_size, progress_bar, sigterm_exits
from drkit.errors import CheckFailed, InputError, UsageError
from drkit.workspace.access import (
    credentials,
    kdf_params,
    load_plan_if_any,
    open_store_at,
    opened_repository,
    password_from,
    repository_at,
    repository_credentials,
)

if TYPE_CHECKING:
    from drkit.repository.retention import Policy

repo_app = typer.Typer(
    name="repo", help="Create and manage backup repositories.", no_args_is_help=True
)
key_app = typer.Typer(name="key", help="Passwords (keys) of a repository.", no_args_is_help=True)
repo_app.add_typer(key_app, name="key")


# --- repo init / key / unlock --------------------------------------------------------------


@repo_app.command("init")
def repo_init(
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Create the repository in a location that holds other files (left alone).",
        ),
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Create a new, empty repository (refuses a non-empty location unless --force).

    An init that was interrupted is finished by running it again with the same password.
    """
    from drkit.repository import Repository

    url, password = credentials(repo, plan)
    r = Repository.init(open_store_at(url), password, kdf=kdf_params(), force=force)
    data = {"repository": r.store.url, "id": r.id, "key": r.key_id}
    r.close()
    emit(data, json_, lambda out: out.print(f"created repository {r.id[:8]} at {r.store.url}"))


@key_app.command("list")
def key_list(
    repo: RepoOption = None, plan: PlanOption = DEFAULT_PLAN, json_: JsonOption = False
) -> None:
    """List the keys (passwords) of the repository."""
    with opened_repository(repo, plan) as r:
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
    new = password_from("DRKIT_NEW_PASSWORD", "DRKIT_NEW_PASSWORD_FILE")
    with opened_repository(repo, plan) as r:
        kid = r.add_key(new, kdf=kdf_params())
    emit({"added": kid}, json_, lambda out: out.print(f"added key {kid[:12]}"))


@key_app.command("remove")
def key_remove(
    key_id: Annotated[str, typer.Argument(help="Key id or unique prefix.")],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Remove a key; refuses to remove the last one."""
    with opened_repository(repo, plan) as r:
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
    with opened_repository(repo, plan) as r:
        n = r.remove_stale_locks(all_locks=all_)
    emit({"removed": n}, json_, lambda out: out.print(f"removed {n} lock(s)"))


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
    if read_data and read_data_subset is not None:
        raise UsageError(
            "--read-data and --read-data-subset exclude each other",
            hint="--read-data re-hashes every pack; --read-data-subset N/T a part of them",
        )
    if read_data_subset is not None:
        m = _SUBSET.match(read_data_subset)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise UsageError(
                f"--read-data-subset {read_data_subset!r}: expected N/T with 1 <= N <= T, e.g. 2/5"
            )
        subset = (int(m.group(1)), int(m.group(2)))
    with opened_repository(repo, plan) as r:
        total = sum(r.list_packs().values()) if (read_data or subset) else None
        with progress_bar(json_, total, "check") as advance:
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

    loaded = load_plan_if_any(plan)
    out: dict[str, Policy] = {}
    for _, comp in loaded.components() if loaded is not None else ():
        ret = comp.retention
        if ret is not None:
            out[comp.name] = Policy.from_plan(ret)
    return out


_KEEP_HELP = "Keep the newest of each of the N most recent {}s with a snapshot (-1: all)."


def forget_cmd(
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", help="Keep the N newest (-1: all).")
    ] = None,
    keep_hourly: Annotated[
        int | None, typer.Option("--keep-hourly", help=_KEEP_HELP.format("hour"))
    ] = None,
    keep_daily: Annotated[
        int | None, typer.Option("--keep-daily", help=_KEEP_HELP.format("day"))
    ] = None,
    keep_weekly: Annotated[
        int | None, typer.Option("--keep-weekly", help=_KEEP_HELP.format("week"))
    ] = None,
    keep_monthly: Annotated[
        int | None, typer.Option("--keep-monthly", help=_KEEP_HELP.format("month"))
    ] = None,
    keep_yearly: Annotated[
        int | None, typer.Option("--keep-yearly", help=_KEEP_HELP.format("year"))
    ] = None,
    keep_within: Annotated[str | None, typer.Option("--keep-within", help="e.g. 7d")] = None,
    keep_tag: Annotated[list[str] | None, typer.Option("--keep-tag")] = None,
    component: Annotated[list[str] | None, typer.Option("--component", "-c")] = None,
    version: Annotated[
        list[str] | None,
        typer.Option(
            "--version",
            help="Forget this named version of the --component dataset (repeatable); "
            "versions are kept otherwise.",
        ),
    ] = None,
    prune_: Annotated[bool, typer.Option("--prune", help="Prune unreferenced data after.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Forget snapshots by retention policy (restic keep-* semantics, per component).

    Counts are N >= 0 or -1 for all. Without any --keep-* option the plan's retention is
    used; given options are the whole policy (--keep-last 0 alone is refused: it names
    no rule). Named versions of versioned datasets are kept whatever the policy;
    `--version NAME` forgets one by name.
    """
    from drkit.repository.maintenance import prune
    from drkit.workspace.rollback_closure import lineage_protected
    from drkit.workspace.versions import release

    policy, explicit = _policy_of_options(
        (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly),
        keep_within,
        keep_tag or [],
    )
    left = "snapshots already forgotten stay forgotten; run it again to finish"
    with sigterm_exits("forget", lambda: left), opened_repository(repo, plan) as r:
        _refuse_unknown_components(r, component)
        # the plan only for --version (the lineage it protects): never consulted otherwise
        named = release(r, load_plan_if_any(plan) if version else None, component, version or [])
        kept = lineage_protected(plan, r)  # what a model rollback within its window needs
        results = _forget(
            r,
            policy if explicit else None,
            plan,
            component,
            dry_run=dry_run,
            release=named,
            protected=kept,
        )
        pruned = prune(r, dry_run=dry_run) if prune_ else None
    keep: list[dict[str, Any]] = [k for res in results for k in res.to_json()["keep"]]
    remove: list[dict[str, Any]] = [k for res in results for k in res.to_json()["remove"]]
    data = {
        "dry_run": dry_run,
        "keep": keep,
        "remove": remove,
        "prune": pruned.to_json() if pruned else None,
    }
    emit(data, json_, lambda out: _render_forget(out, keep, remove, pruned, dry_run=dry_run))


def _policy_of_options(
    counts: tuple[int | None, ...], keep_within: str | None, keep_tag: list[str]
) -> tuple[Policy, bool]:
    """The policy the --keep-* options give, and whether any was given (else: the plan's).

    ``counts``: keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly.
    """
    from drkit.repository.retention import Policy
    from drkit.types import parse_duration

    try:
        within = parse_duration(keep_within) if keep_within else None
    except ValueError as exc:
        raise UsageError(f"--keep-within: {exc}") from exc
    explicit = any(c is not None for c in counts) or within is not None or bool(keep_tag)
    last, hourly, daily, weekly, monthly, yearly = (c or 0 for c in counts)
    try:
        policy = Policy(
            keep_last=last,
            keep_hourly=hourly,
            keep_daily=daily,
            keep_weekly=weekly,
            keep_monthly=monthly,
            keep_yearly=yearly,
            keep_within=within,
            keep_tags=tuple(keep_tag),
        )
    except InputError as exc:
        raise UsageError(f"--{exc}", hint=exc.hint) from exc
    if explicit and policy.empty():
        raise UsageError(
            "the --keep-* options given are all 0: that is no retention rule (it would keep "
            "nothing by rule, and the plan's retention is not used when options are given)",
            hint="pass a count >= 1 (or -1 for all), or no --keep-* option to use the plan",
        )
    return policy, explicit


def _refuse_unknown_components(r: Any, component: list[str] | None) -> None:
    have = {s.component for s in r.snapshots()}
    unknown = [c for c in component or () if c not in have]
    if unknown:  # a typo would otherwise forget nothing and say nothing
        raise UsageError(
            f"no snapshots of component(s) {', '.join(map(repr, unknown))}",
            hint="components with snapshots: " + (", ".join(sorted(have)) or "none"),
        )


def _forget(
    r: Any,
    policy: Policy | None,
    plan: Path,
    component: list[str] | None,
    **options: Any,
) -> list[Any]:
    """Forget by ``policy`` (the options'); None: only the named versions when there are
    some (``options["release"]``), else each component by the plan's retention."""
    from drkit.repository.maintenance import forget
    from drkit.repository.retention import Policy

    if policy is not None:
        return [forget(r, policy, components=component, **options)]
    if options["release"]:  # only the named versions: no policy needed
        return [forget(r, Policy(), components=component, **options)]
    per_component = _retention_from_plan(plan)
    if not per_component:
        raise UsageError(
            "no retention policy given",
            hint="pass --keep-last/--keep-daily/... or define retention in the plan",
        )
    no_retention = [c for c in component or () if c not in per_component]
    if no_retention:
        raise UsageError(
            f"the plan has no retention for {', '.join(map(repr, no_retention))}",
            hint="pass --keep-last/--keep-daily/..., or add a retention to it",
        )
    return [
        forget(r, pol, components=[name], **options)
        for name, pol in per_component.items()
        if component is None or name in component
    ]


def _render_forget(
    out: Console,
    keep: list[dict[str, Any]],
    remove: list[dict[str, Any]],
    pruned: Any,
    *,
    dry_run: bool,
) -> None:
    verb = "would remove" if dry_run else "removed"
    for d in keep:
        why = ", ".join(d["reasons"])
        out.print(f"keep   {d['id'][:8]} {d['component']} {d['time'][:19]} ({why})")
    for d in remove:
        out.print(f"{verb} {d['id'][:8]} {d['component']} {d['time'][:19]}")
    if not remove:  # a distinct outcome, never a silent exit
        out.print(f"nothing to forget: the policy keeps all {len(keep)} snapshot(s)")
    if pruned:
        out.print(
            f"prune: {pruned.packs_deleted} packs deleted, {pruned.packs_repacked} repacked, "
            f"{human_size(pruned.bytes_freed)} freed"
        )


def copy_cmd(
    to: Annotated[str, typer.Option("--to", help="Destination: a plan replica's name, or a URL.")],
    init: Annotated[
        bool, typer.Option("--init", help="Create the destination if missing.")
    ] = False,
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Copy snapshots missing in another repository (incremental, verified after).

    The destination's password: a plan replica's own source (named, or at that URL), else
    DRKIT_TO_PASSWORD / DRKIT_TO_PASSWORD_FILE, else the same.
    """
    from drkit.repository.replica import copy

    to_url, to_password = repository_credentials(to, plan, "TO")
    with (
        sigterm_exits("copy", lambda: "snapshots copied before it are complete; run it again"),
        opened_repository(repo, plan) as src,
        repository_at(to_url, to_password, init=init) as dst,
        progress_bar(json_, None, "copy") as advance,
    ):
        res = copy(src, dst, progress=advance)
    if repo is None:  # the plan's primary: egress measured from it (docs/cost.md)
        from drkit.workspace.costing import record_copy_at

        record_copy_at(plan, to, res)
    emit(
        res.to_json(),
        json_,
        lambda out: out.print(
            f"copied {len(res.snapshots_copied)} snapshots "
            f"({res.snapshots_present} already there), {res.blobs_copied} blobs, "
            f"{human_size(res.bytes_copied)}; {res.packs_verified} packs verified"
        ),
    )


def repair_cmd(
    from_: Annotated[
        str, typer.Option("--from", help="Replica to heal from: a plan replica's name, or a URL.")
    ],
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Re-fetch missing or corrupt objects from a replica; exit 1 if some cannot be healed.

    The replica's password: a plan replica's own source (named, or at that URL), else
    DRKIT_FROM_PASSWORD / DRKIT_FROM_PASSWORD_FILE, else the same.
    """
    from drkit.repository.replica import repair

    from_url, from_password = repository_credentials(from_, plan, "FROM")
    with (
        sigterm_exits("repair", lambda: "what it healed stays healed; run it again to finish"),
        opened_repository(repo, plan) as r,
        repository_at(from_url, from_password) as replica,
        progress_bar(json_, None, "repair") as advance,
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
    app.command("check")(check_cmd)
    app.command("forget")(forget_cmd)
    app.command("copy")(copy_cmd)
    app.command("repair")(repair_cmd)
