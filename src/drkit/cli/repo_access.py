"""What the repository commands share on the CLI side: the ``--repo`` option, progress bars.

The repository is ``--repo URL`` or ``DRKIT_REPO`` (a URL, a path, or the name of a
repository of the plan), else the plan's primary; reaching it
(URL, password, opened store and repository) is the composition root's job:
:mod:`drkit.workspace.access`. Shared by ``repo_cmd``, ``backup_cmd`` and ``vectors_cmd``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from drkit.cli.common import err_console

RepoOption = Annotated[
    str | None,
    typer.Option(
        "--repo",
        envvar="DRKIT_REPO",
        help="Repository URL, path or plan repository name (default: the plan's primary).",
    ),
]


@contextlib.contextmanager
def progress_bar(json_: bool, total: int | None, what: str) -> Iterator[Callable[[int], None]]:
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


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


class Terminated(BaseException):
    """SIGTERM during a repository command: unwinds like Ctrl-C, so locks are released."""


@contextlib.contextmanager
def sigterm_exits(what: str, left: Callable[[], str]) -> Iterator[None]:
    """Turn SIGTERM (a service manager, ``kill``, a CI timeout) into an orderly exit 143:
    the ``with`` blocks inside release the repository lock on the way out, then one line
    says what ``left()`` reports was left behind."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, previous)
        err_console.print(
            f"terminated (SIGTERM) during {what}: the lock was released; {left()}",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
