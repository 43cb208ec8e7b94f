"""Options and output helpers shared by every command group.

Every command takes ``--plan PATH`` and ``--json``. Commands call one library function
and hand its result to :func:`emit`, which prints JSON or a Rich rendering.
"""

from __future__ import annotations

import json
import logging
import os
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

#: the version of the shape of every JSON object drkit prints (``--json``); bumped when
#: a field is removed or changes meaning, not when one is added
SCHEMA_VERSION = 1
#: the width of output that is not a terminal (a pipe, a file, CI): wide enough that
#: nothing is hard-wrapped; tables still size to their content
PIPE_WIDTH = 4096


def _width(stream: Any) -> int | None:
    """``None`` (Rich decides: the terminal's width, or ``COLUMNS``) on a terminal or when
    ``COLUMNS`` is set, else :data:`PIPE_WIDTH`."""
    if "COLUMNS" in os.environ:
        return None
    try:
        return None if stream.isatty() else PIPE_WIDTH
    except (AttributeError, ValueError):
        return PIPE_WIDTH


console = Console(highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def json_ready(value: Any) -> Any:
    """``value`` with one representation per kind: times as RFC 3339 strings (UTC),
    integral floats as integers, paths as strings, tuples and sets as lists."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [json_ready(v) for v in items]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def rfc3339(epoch: float) -> str:
    """A Unix time as RFC 3339 in UTC, e.g. ``2026-12-01T23:50:00.123Z``."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def dump_json(data: Any) -> str:
    """The JSON text of a command's result: objects carry ``schema_version``."""
    doc = json_ready(data)
    if isinstance(doc, dict) and "schema_version" not in doc:
        doc = {"schema_version": SCHEMA_VERSION, **doc}
    return json.dumps(doc, indent=2)


def emit(data: Any, as_json: bool, render: Callable[[Console], None]) -> None:
    """Print ``data`` as JSON when ``as_json``, else call ``render`` with the console."""
    if as_json:
        sys.stdout.write(dump_json(data) + "\n")
        _OUTPUT["json_printed"] = True
    else:
        render(console)


#: whether this command already printed its JSON result (then an error after it, e.g. a
#: failed check, is said on stderr only: stdout stays one JSON document)
_OUTPUT = {"json_printed": False}


def json_printed() -> bool:
    return _OUTPUT["json_printed"]


def reset_output() -> None:
    _OUTPUT["json_printed"] = False


def json_error(exc: Exception, *, hint: str | None, exit_code: int) -> str:
    """The JSON object printed on stdout for an error under ``--json``."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "hint": hint,
            "exit_code": exit_code,
        },
    }
    return json.dumps(doc, indent=2)


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
