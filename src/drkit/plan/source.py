"""Where each element of a plan came from: file and line, for errors and lint findings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def field_name(path: Sequence[str | int]) -> str:
    """``("serving", "routes", 0, "targets")`` -> ``serving.routes[0].targets``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(part):  # a key with dots, spaces, newlines: quote it
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Location:
    """A place in a plan file; ``line`` is 1-based, ``None`` when unknown."""

    file: str | None
    line: int | None
    field: str

    def __str__(self) -> str:
        where = self.file or "<plan>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field}" if self.field else where


@dataclass
class SourceMap:
    """Line numbers of every mapping key and sequence item, keyed by their path."""

    file: str | None = None
    lines: dict[PathKey, int] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while True:
            line = self.lines.get(key)
            if line is not None or not key:
                return line
            key = key[:-1]

    def locate(self, path: Sequence[str | int]) -> Location:
        return Location(self.file, self.line_of(path), field_name(path))

    def known_prefix(self, loc: Sequence[str | int]) -> PathKey:
        """The part of a validation error ``loc`` that names real plan elements.

        pydantic adds union branch labels (``interval``, ``function-after[...]``) to
        locations; they are skipped, keeping only steps that exist in the file.
        """
        out: PathKey = ()
        for part in loc:
            candidate = (*out, part)
            if candidate in self.lines:
                out = candidate
        return out
