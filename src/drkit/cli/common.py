"""Options and output helpers shared by every command group.

Every command takes ``--plan PATH`` and ``--json``. Commands call one library function
and hand its result to :func:`emit`, which prints JSON or a Rich rendering.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from drkit.errors import UsageError

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


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line: time (RFC 3339, UTC), level, logger, message, and
    the record's ``extra`` fields."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
    }

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


LOG_FORMATS = ("text", "json")


def log_handler(fmt: str = "text") -> logging.Handler:
    """A stderr handler in the chosen format (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


def configure_logging(*, verbose: int = 0, quiet: bool = False, fmt: str = "text") -> None:
    """drkit's log lines on stderr: warnings by default, ``-v`` info, ``-vv`` debug,
    ``-q`` errors only; ``fmt`` ``json`` for structured lines."""
    if fmt not in LOG_FORMATS:
        raise UsageError(f"unknown --log-format {fmt!r}", hint="use --log-format text or json")
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    if verbose >= 2:
        level = logging.DEBUG
    root = logging.getLogger("drkit")
    for old in [h for h in root.handlers if getattr(h, "_drkit_cli", False)]:
        root.removeHandler(old)
    handler = log_handler(fmt)
    handler._drkit_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    _LOGGING["format"] = fmt


#: the root options' choice, for commands that set up loggers of their own (the gateway)
_LOGGING = {"format": "text"}


def log_format() -> str:
    """``text`` or ``json``: what ``--log-format`` chose."""
    return _LOGGING["format"]


def announce(info: dict[str, Any], as_json: bool, text: str) -> None:
    """Say that a long-running server is up: one JSON line on stdout, or ``text`` on stderr."""
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
    else:
        err_console.print(text, markup=False, soft_wrap=True)
