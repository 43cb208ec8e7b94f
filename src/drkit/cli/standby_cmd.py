"""``drkit standby sync|verify|promote``: warm standbys of vector stores (docs/standby.md).

Thin shell over :mod:`drkit.workspace.standby`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from drkit.cli.common import DEFAULT_PLAN, JsonOption, PlanOption, emit
from drkit.errors import CheckFailed, UsageError

standby_app = typer.Typer(
    name="standby",
    help="Warm standby vector stores: keep them in step, check them, promote one.",
    no_args_is_help=True,
)

ComponentArg = Annotated[
    str, typer.Argument(help="A plan vector-store COMPONENT with a `standby:`.")
]


def _lag(s: float | None) -> str:
    return "never fully synced" if s is None else f"{s:.1f}s"


@standby_app.command("sync")
def sync_cmd(
    component: ComponentArg,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Keep syncing every `standby.interval` until stopped."),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Records per batch (default: the plan's)."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Bring the standby in step: only changed and deleted records travel; the lag is measured."""
    from drkit.workspace.standby import standby_of, sync_standby
    from drkit.workspace.workspace import Workspace

    with Workspace.load(plan) as ws:
        _, sb = standby_of(ws.plan, component)
        while True:
            res = sync_standby(ws, component, batch_size=batch_size)

            def render(out: Console, res: object = res) -> None:
                from drkit.workspace.standby import StandbySync

                assert isinstance(res, StandbySync)
                for c in res.collections:
                    out.print(
                        f"{component}/{c.collection} -> {res.standby} ({res.region}): "
                        f"{c.upserted} upserted, {c.deleted} deleted, {c.unchanged} unchanged"
                        + (f", {c.deletes_pending} deletes to confirm" if c.deletes_pending else "")
                        + f" in {c.duration_s:.2f}s",
                        markup=False,
                    )
                    for note in c.notes:
                        out.print(f"  note: {note}", markup=False)
                out.print(f"lag: {_lag(res.lag_s)}", markup=False)

            emit(res.to_json(), json_, render)
            if not res.collections:
                raise UsageError(
                    f"vector store {component!r} has no collection to sync",
                    hint="list collections in the plan, or create one in the source engine",
                )
            if not follow:
                return
            time.sleep(sb.interval)


@standby_app.command("verify")
def verify_cmd(
    component: ComponentArg,
    queries: Annotated[
        int, typer.Option("--queries", min=1, help="Golden queries per collection.")
    ] = 50,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Check the standby while sync runs: counts, per-record checksums, golden queries."""
    from drkit.workspace.standby import verify_standby
    from drkit.workspace.workspace import Workspace

    with Workspace.load(plan) as ws:
        checks = verify_standby(ws, component, queries=queries)

    def render(out: Console) -> None:
        table = Table("collection", "records", "synced", "in flight", "behind", "overlap", "")
        for c in checks:
            table.add_row(
                c.collection,
                str(c.standby_records),
                str(c.ledger_records),
                str(c.in_flight),
                "?" if c.behind is None else str(c.behind),
                f"{c.overlap:.3f}",
                "ok" if c.ok else "FAILED",
            )
        out.print(table)
        for c in checks:
            for p in c.problems:
                out.print(f"{c.collection}: {p}", markup=False)
            for n in c.notes:
                out.print(f"{c.collection}: note: {n}", markup=False)

    emit({"component": component, "checks": [c.to_json() for c in checks]}, json_, render)
    bad = [c for c in checks if not c.ok]
    if bad:
        raise CheckFailed(
            f"the standby of {component!r} failed its check: {bad[0].problems[0]}",
            hint=f"sync it again (drkit standby sync {component}) and verify",
        )


@standby_app.command("promote")
def promote_cmd(
    component: ComponentArg,
    plan_out: Annotated[
        Path | None,
        typer.Option("--plan-out", help="Write the promoted plan to this new file."),
    ] = None,
    plan: PlanOption = DEFAULT_PLAN,
    json_: JsonOption = False,
) -> None:
    """Stop sync, check the standby, and print the plan with the standby as the primary."""
    from drkit.workspace.standby import promote_standby
    from drkit.workspace.workspace import Workspace

    if plan_out is not None:
        if plan_out.exists():
            raise UsageError(
                f"--plan-out {plan_out} exists", hint="name a new file; drkit never overwrites"
            )
        if not plan_out.parent.is_dir():
            raise UsageError(f"--plan-out: no directory {plan_out.parent}")
    with Workspace.load(plan) as ws:
        promo = promote_standby(ws, component)
    if not promo.ok:
        bad = next(c for c in promo.checks if not c.ok)
        raise CheckFailed(
            f"the standby of {component!r} was not promoted (sync keeps running): "
            f"{bad.collection}: {bad.problems[0]}",
            hint=f"drkit standby verify {component}",
        )
    if plan_out is not None:
        tmp = plan_out.with_name(plan_out.name + ".tmp")
        tmp.write_text(promo.plan_yaml)
        tmp.replace(plan_out)
    doc = promo.to_json()
    doc["plan_out"] = None if plan_out is None else str(plan_out)
    if plan_out is None:
        doc["plan"] = promo.plan_yaml

    def render(out: Console) -> None:
        if plan_out is None:
            out.print(promo.plan_yaml, markup=False, end="")
        else:
            out.print(
                f"promoted the standby of {component!r} ({promo.standby}, {promo.region}) in "
                f"{promo.duration_s:.2f}s, lag at promotion {_lag(promo.lag_s)}; plan: {plan_out}",
                markup=False,
            )

    emit(doc, json_, render)


def register(app: typer.Typer) -> None:
    app.add_typer(standby_app, name="standby")
