"""``drkit lineage show|impact|check``: dataset snapshots -> model versions -> eval runs ->
alias events, and whether a repository holds what a rollback needs.

Thin shells over :mod:`drkit.lineage.graph` (joined from drkit's state) and
:mod:`drkit.workspace.lineage` (the closure check against a repository).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.cli.repo_access import RepoOption
from drkit.errors import CheckFailed, UsageError

lineage_app = typer.Typer(
    name="lineage",
    help="Lineage: what a model version came from, a dataset's blast radius, rollback closure.",
    no_args_is_help=True,
)


def _at(row: dict[str, Any]) -> str:
    return f"{row['at']:%Y-%m-%d %H:%M:%S}Z"


def _move(out: Console, c: dict[str, Any]) -> None:
    out.print(
        f"  {c['at']:%Y-%m-%d %H:%M:%S}Z {c['model']}:{c['alias']} {c['from'] or '(unset)'} -> "
        f"{c['to']} [{c['action']}] by {c['by']}: {c['reason']}",
        markup=False,
    )


def _run(out: Console, r: dict[str, Any]) -> None:
    verdict = {True: "passed", False: "failed", None: "no verdict"}[r["passed"]]
    score = f"{r['mean_score']:.3f}" if isinstance(r["mean_score"], int | float) else "?"
    out.print(
        f"  {_at(r)} run {r['run_id']} on {r['eval_set']}: mean {score}, {verdict}",
        markup=False,
    )


@lineage_app.command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION.")],
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Everything MODEL@VERSION came from, and its eval runs and alias moves since."""
    from drkit.lineage.graph import show
    from drkit.lineage.registry import parse_model_ref
    from drkit.workspace.models import open_registry

    model, version = parse_model_ref(ref)
    with open_registry(plan) as (registry, _):
        data = show(registry, model, version)

    def render(out: Console) -> None:
        v = data["version"]
        out.print(f"{model}@{version}  registered {v['registered_at']:%Y-%m-%d %H:%M:%S}Z "
                  f"by {v['by']} ({v['source']})", markup=False)  # fmt: skip
        ups = ", ".join(f"{p}={m}" for p, m in v["upstream"].items()) or "none"
        out.print(f"  serves: {ups}", markup=False)
        out.print("came from:")
        for n in data["closure"]:
            out.print(f"  {n['kind']:<9} {n['label']}  snapshot {n['snapshot'][:12]}", markup=False)
        for es in data["eval_sets"]:
            runs = ", ".join(es["runs"])
            out.print(f"  eval_set  {es['label']}  digest {es['digest'][:12]} (runs {runs})",
                      markup=False)  # fmt: skip
        if not data["closure"] and not data["eval_sets"]:
            out.print("  (no training snapshot, artifacts or eval set recorded)")
        out.print(f"eval runs ({len(data['eval_runs'])}):")
        for r in data["eval_runs"]:
            _run(out, r)
        out.print(f"alias moves ({len(data['alias_events'])}):")
        for c in data["alias_events"]:
            _move(out, c)
        names = ", ".join(f"{model}:{a}" for a in data["aliases_now"]) or "no alias"
        out.print(f"named now by: {names}", markup=False)
        for d in data["drills"]:
            out.print(
                f"drill {d['at']:%Y-%m-%d %H:%M:%S}Z {d['scenario']}: {d['candidate']} broke "
                f"{model}:{d['alias']}, detected in {d['detection_s']}s, rolled back to "
                f"{d['rolled_back_to']} (RTO {d['rto_s']}s, quality back in "
                f"{d['time_to_quality_recovery_s']}s; sandbox registry)",
                markup=False,
            )

    emit(data, json_, render)


@lineage_app.command("impact")
def impact_cmd(
    ref: Annotated[
        str, typer.Argument(help="DATASET@SNAPSHOT: a named version or a snapshot id (prefix).")
    ],
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """The blast radius of a dataset snapshot: every model version, eval run and alias
    downstream of it."""
    from drkit.lineage.graph import impact
    from drkit.workspace.models import open_registry

    dataset, sep, which = ref.partition("@")
    if not sep or not dataset or not which:
        raise UsageError(f"{ref!r}: expected DATASET@SNAPSHOT", hint="e.g. train@v2")
    with open_registry(plan) as (registry, _):
        data = impact(registry, dataset, which)

    def render(out: Console) -> None:
        out.print(f"{dataset}@{which} (snapshot {data['snapshot'][:12]}) trained:", markup=False)
        for v in data["versions"]:
            out.print(f"  {v['model']}@{v['version']}", markup=False)
        out.print(f"eval runs of them ({len(data['eval_runs'])}):")
        for r in data["eval_runs"]:
            _run(out, r)
        out.print(f"alias moves ({len(data['alias_events'])}):")
        for c in data["alias_events"]:
            _move(out, c)
        if data["aliases_now"]:
            for s in data["aliases_now"]:
                out.print(f"SERVING NOW: {s['model']}:{s['alias']} = {s['version']}", markup=False)
        else:
            out.print("no alias names any of them now")

    emit(data, json_, render)


@lineage_app.command("check")
def check_cmd(
    repo: RepoOption = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Verify that a repository (default: the primary) holds and verifies everything needed
    to serve and rebuild each version an alias names or named within the rollback window;
    exit 1 listing what is missing."""
    from drkit.workspace.access import opened_repository
    from drkit.workspace.lineage import closure_check, missing_hint
    from drkit.workspace.models import open_registry

    with open_registry(plan) as (registry, loaded), opened_repository(repo, plan) as r:
        if not registry.models():
            raise UsageError(
                "the registry has no model: there is no rollback closure to check",
                hint="drkit model register MODEL VERSION --trained-on DATASET@SNAPSHOT",
            )
        name = repo or (loaded.repositories.primary.name if loaded is not None else "primary")
        result = closure_check(registry, loaded, r, name)
    data = result.to_json()

    def held(n: dict[str, Any]) -> str:
        if n["kind"] != "eval_set":
            return ""
        return f" in {n['component']}@{n['snapshot'][:8]}" if n["snapshot"] else ""

    def render(out: Console) -> None:
        for row in result.ok:
            n = row["need"]
            out.print(f"ok       {row['ref']}  {n['kind']} {n['label']}{held(n)}", markup=False)
        for row in result.missing:
            n = row["need"]
            which = n["snapshot"][:12] or f"digest {n['digest'][:12]}"
            out.print(
                f"MISSING  {row['ref']}  {n['kind']} {n['label']} ({which}): {row['problem']}",
                markup=False,
            )
        checked = len(result.ok) + len(result.missing)
        out.print(
            f"{name}: {checked} snapshot(s) of {result.versions} aliased version(s) checked, "
            f"{len(result.missing)} missing",
            markup=False,
        )

    emit(data, json_, render)
    if result.versions == 0:
        raise CheckFailed(
            "no alias names a version: nothing a rollback needs could be checked",
            hint="drkit model alias set MODEL ALIAS VERSION --reason ...",
        )
    if result.missing:
        unheld = [row["need"] for row in result.missing if not row["need"]["snapshot"]]
        raise CheckFailed(
            f"{name} lacks {len(result.missing)} snapshot(s) a rollback needs",
            hint=f"drkit copy --to {name}"
            if repo
            else missing_hint(unheld[0], None)
            if unheld
            else "back the components up again",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(lineage_app, name="lineage")
