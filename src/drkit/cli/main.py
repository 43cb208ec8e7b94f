"""The ``drkit`` command: a thin shell that maps library errors to exit codes.

Exit codes: 0 ok, 1 a check or drill that fails its targets (or an operation that
failed), 2 usage or input error. Errors print one line plus ``Try: <hint>``.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.markup import escape

from drkit import __version__
from drkit.cli.common import err_console
from drkit.errors import DrkitError

app = typer.Typer(
    name="drkit",
    help="Disaster recovery for AI systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

#: Command groups, one module each; every module exposes ``register(app)``.
COMMAND_MODULES: list[str] = [
    "drkit.cli.plan_cmd",
    "drkit.cli.gateway_cmd",
    "drkit.cli.backup_cmd",
    "drkit.cli.repo_cmd",
    "drkit.cli.simulate_cmd",
    "drkit.cli.drill_cmd",
    "drkit.cli.demo_cmd",
    "drkit.cli.vectors_cmd",
]


@app.callback()
def _root() -> None:
    """Disaster recovery for AI systems: plan, snapshot, fail over, drill."""


@app.command()
def version() -> None:
    """Print drkit's version."""
    typer.echo(__version__)


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register()


def _report(exc: DrkitError) -> int:
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"Try: {exc.hint}", markup=False, soft_wrap=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code (tests call this directly)."""
    try:
        code = app(args=argv, standalone_mode=False)  # typer.Exit(n) comes back as n
    except DrkitError as exc:
        return _report(exc)
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        from drkit.extras import from_import_error

        missing = from_import_error(exc)
        if missing is None:
            raise
        return _report(missing)
    except typer.Exit as exc:  # --help, typer.Exit(code)
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: unknown command, bad option
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
