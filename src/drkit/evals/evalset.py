"""Eval sets as data: a JSONL file, one example a line, validated at load.

Each line is a JSON object::

    {"id": "capital-fr", "prompt": "Capital of France?", "expected": "Paris",
     "scorer": "contains", "params": {}}

``messages`` (chat messages, ``[{"role": "user", "content": "..."}]``) may replace
``prompt``; ``scorer`` defaults to ``exact``; ``params`` to ``{}``; ``topic`` is an
optional label. Blank lines and lines starting with ``#`` are skipped. Any problem
raises :class:`~drkit.errors.PlanError` with ``file:line`` and the field. The set's
*version* is the blake3 digest of the file's bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from drkit.errors import PlanError
from drkit.evals import scorers

_KNOWN = frozenset({"id", "prompt", "messages", "expected", "scorer", "params", "topic"})
_HINT = "see docs/evals.md for the eval-set format"


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    messages: tuple[dict[str, str], ...]
    expected: Any
    scorer: str = "exact"
    params: dict[str, Any] = field(default_factory=dict)
    topic: str | None = None
    line: int = 0

    def score(self, answer: str) -> float:
        return scorers.SCORERS[self.scorer](answer, self.expected, self.params)


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    path: str
    digest: str
    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)


def _fail(file: str, line: int, message: str, fld: str | None = None) -> PlanError:
    return PlanError(message, file=file, line=line, field=fld, hint=_HINT)


def _messages(obj: dict[str, Any], file: str, line: int) -> tuple[dict[str, str], ...]:
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise _fail(file, line, "must be a non-empty list of chat messages", "messages")
        out = []
        for i, m in enumerate(msgs):
            if (
                not isinstance(m, dict)
                or m.get("role") not in ("system", "user", "assistant")
                or not isinstance(m.get("content"), str)
            ):
                raise _fail(
                    file,
                    line,
                    "needs a role (system/user/assistant) and a string content",
                    f"messages[{i}]",
                )
            out.append({"role": m["role"], "content": m["content"]})
        return tuple(out)
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _fail(file, line, "missing: give a prompt (a string) or messages", "prompt")
    return ({"role": "user", "content": prompt},)


def parse_example(obj: Any, file: str, line: int) -> Example:
    if not isinstance(obj, dict):
        raise _fail(file, line, "each line must be a JSON object")
    unknown = sorted(set(obj) - _KNOWN)
    if unknown:
        raise _fail(file, line, f"unknown field (known: {', '.join(sorted(_KNOWN))})", unknown[0])
    ex_id = obj.get("id")
    if not isinstance(ex_id, (str, int)) or isinstance(ex_id, bool) or str(ex_id) == "":
        raise _fail(file, line, "missing or not a string", "id")
    if "expected" not in obj:
        raise _fail(file, line, "missing: the expected output", "expected")
    scorer = obj.get("scorer", "exact")
    if scorer not in scorers.SCORERS:
        raise _fail(
            file,
            line,
            f"unknown scorer {scorer!r}; one of {', '.join(sorted(scorers.SCORERS))}",
            "scorer",
        )
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise _fail(file, line, "must be an object", "params")
    bad = sorted(set(params) - scorers.PARAMS.get(scorer, frozenset()))
    if bad:
        raise _fail(file, line, f"scorer {scorer} takes no parameter {bad[0]!r}", "params")
    missing = sorted(scorers.REQUIRED.get(scorer, frozenset()) - set(params))
    if missing:
        raise _fail(file, line, f"scorer {scorer} needs params.{missing[0]}", "params")
    if scorer == "regex":
        try:
            re.compile(str(obj["expected"]))
        except re.error as exc:
            raise _fail(file, line, f"not a valid regular expression: {exc}", "expected") from None
    if scorer == "numeric":
        try:
            float(obj["expected"])
        except (TypeError, ValueError):
            raise _fail(file, line, "scorer numeric needs a number", "expected") from None
    topic = obj.get("topic")
    return Example(
        id=str(ex_id),
        messages=_messages(obj, file, line),
        expected=obj["expected"],
        scorer=str(scorer),
        params=dict(params),
        topic=str(topic) if topic is not None else None,
        line=line,
    )


def load_eval_set(path: str | Path) -> EvalSet:
    """Read and validate the JSONL eval set at ``path``."""
    p = Path(path)
    file = str(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise PlanError("no such eval set", file=file, hint=_HINT) from None
    except OSError as exc:
        raise PlanError(f"cannot read: {exc.strerror}", file=file) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanError("not UTF-8 text", file=file, hint=_HINT) from None
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(file, n, f"bad JSON: {exc.msg} (column {exc.colno})") from None
        ex = parse_example(obj, file, n)
        if ex.id in seen:
            raise _fail(file, n, f"duplicate id {ex.id!r} (first on line {seen[ex.id]})", "id")
        seen[ex.id] = n
        examples.append(ex)
    if not examples:
        raise PlanError("the eval set has no examples", file=file, hint=_HINT)
    return EvalSet(
        name=p.stem,
        path=file,
        digest=blake3.blake3(raw).hexdigest(),
        examples=tuple(examples),
    )
