"""Options and output helpers shared by every command group.

Every command takes ``--plan PATH`` and ``--json``. Commands call one library function
and hand its result to :func:`emit`, which prints JSON or a Rich rendering.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

PlanOption = Annotated[
    Path,
    typer.Option("--plan", envvar="DRKIT_PLAN", help="The DR plan file.", show_default=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

DEFAULT_PLAN = Path("drkit.yaml")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit(data: Any, as_json: bool, render: Callable[[Console], None]) -> None:
    """Print ``data`` as JSON when ``as_json``, else call ``render`` with the console."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(console)


def announce(info: dict[str, Any], as_json: bool, text: str) -> None:
    """Say that a long-running server is up: one JSON line on stdout, or ``text`` on stderr."""
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
    else:
        err_console.print(text, markup=False, soft_wrap=True)
