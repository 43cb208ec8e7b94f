"""The ``drkit`` command: a thin shell that maps library errors to exit codes.

Exit codes: 0 ok, 1 a check or drill that fails its targets (or an operation that
failed), 2 usage or input error. Errors print one line plus ``Try: <hint>``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from rich.markup import escape

from drkit import __version__
from drkit.cli.common import (
    JsonOption,
    configure_logging,
    emit,
    err_console,
    json_error,
    json_printed,
    reset_output,
)
from drkit.errors import DrkitError

app = typer.Typer(
    name="drkit",
    help="Disaster recovery for AI systems.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
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
    "drkit.cli.agent_cmd",
    "drkit.cli.eval_cmd",
    "drkit.cli.status_cmd",
    "drkit.cli.incident_cmd",
    "drkit.cli.state_cmd",
    "drkit.cli.standby_cmd",
    "drkit.cli.cost_cmd",
    "drkit.cli.providers_cmd",
    "drkit.cli.model_cmd",
    "drkit.cli.lineage_cmd",
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"drkit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log detail (-vv: debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log errors only.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="Log lines as text or json (one object a line).")
    ] = "text",
) -> None:
    """Disaster recovery for AI systems: plan, snapshot, fail over, drill."""
    configure_logging(verbose=verbose, quiet=quiet, fmt=log_format)


@app.command()
def version(json_: JsonOption = False) -> None:
    """Print drkit's version."""
    emit({"version": __version__}, json_, lambda out: out.print(__version__, markup=False))


def _register() -> None:
    from drkit.cli.examples import attach

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    attach(app)


_register()


def _interrupted(argv: list[str] | None) -> int:
    # what was written stays consistent (atomic writes; a snapshot exists only once its
    # manifest is written), but the command did not finish: say so, exit 130
    words = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")]
    err_console.print(
        f"interrupted: drkit {' '.join(words[:2])} stopped before it finished; "
        "nothing it did not report was completed (exit 130)",
        markup=False,
        soft_wrap=True,
    )
    return 130


def _report(exc: DrkitError, argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if "--json" in args and not json_printed():  # the reader of stdout gets it as JSON too
        sys.stdout.write(json_error(exc, hint=exc.hint, exit_code=exc.exit_code) + "\n")
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"Try: {exc.hint}", markup=False, soft_wrap=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code (tests call this directly)."""
    reset_output()
    try:
        # typer.Exit(n) comes back as n
        code = app(args=argv, prog_name="drkit", standalone_mode=False)
    except DrkitError as exc:
        return _report(exc, argv)
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        from drkit.extras import from_import_error

        missing = from_import_error(exc)
        if missing is None:
            raise
        return _report(missing, argv)
    except typer.Exit as exc:  # --help, typer.Exit(code)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _interrupted(argv)
    except typer.TyperException as exc:  # usage errors: unknown command, bad option
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return int(getattr(exc, "exit_code", 2))
    if code == 130:  # typer turns Ctrl-C into a return of 130 (standalone_mode=False)
        return _interrupted(argv)
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    from drkit.cli.memory import bound_malloc_arenas

    bound_malloc_arenas()  # before any thread starts (tests calling main() skip it)
    sys.exit(main())
