"""``drkit demo``: the whole DR cycle on an embedded example stack (drkit.workspace.demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drkit.cli.common import JsonOption, emit, err_console
from drkit.cli.drill_cmd import render_scorecard
from drkit.errors import CheckFailed
from drkit.workspace.demo_sizes import SIZES


def demo_cmd(
    directory: Annotated[
        Path, typer.Option("--dir", help="Work directory (must be absent or empty).")
    ] = Path("demo-out"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data and the faults.")] = 0,
    size: Annotated[
        str, typer.Option("--size", help="Stack size: " + " | ".join(SIZES) + ".")
    ] = "default",
    json_: JsonOption = False,
) -> None:
    """Build an example AI stack, back it up, replicate, verify, run a game day."""
    from drkit.extras import require
    from drkit.workspace.demo import run_demo

    # before anything is written: the demo's vector store and its serving drills
    require("lancedb", "drkit demo")
    require("gateway", "drkit demo")

    say = (lambda _msg: None) if json_ else (lambda msg: err_console.print(f"[bold]demo[/] {msg}"))
    result = run_demo(
        directory,
        seed=seed,
        size=size,
        say=say,
        on_drill=None if json_ else (lambda name: err_console.print(f"[bold]drill[/] {name}")),
    )
    emit(result.to_json(), json_, lambda out: render_scorecard(out, result.gameday))
    if not json_:
        err_console.print(
            f"plan: {result.plan}\nstate and journals: {result.plan.parent / '.drkit'}\n"
            f"try: drkit drill history --plan {result.plan}"
        )
    if not result.gameday.passed:
        raise CheckFailed(
            "the demo's game day has failing drills", hint=f"read {result.gameday.report}"
        )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
