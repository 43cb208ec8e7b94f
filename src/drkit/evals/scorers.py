"""Scorers: how one answer is scored against the expected output (0.0 to 1.0).

A scorer is a function ``(answer, expected, params) -> float`` registered under a name;
users add their own with :func:`register`. Every built-in scorer gives 1.0 or 0.0
except ``numeric``, which also gives 0.0/1.0 (inside/outside the tolerance); the
comparison treats a set whose scores are all 0/1 as pass/fail.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

Scorer = Callable[[str, Any, Mapping[str, Any]], float]

SCORERS: dict[str, Scorer] = {}
#: parameters each built-in scorer accepts (checked when the eval set is loaded)
PARAMS: dict[str, frozenset[str]] = {}


def register(name: str, scorer: Scorer, params: frozenset[str] = frozenset()) -> None:
    """Make ``scorer`` available to eval sets as ``"scorer": name``."""
    SCORERS[name] = scorer
    PARAMS[name] = params


def normalise(text: str) -> str:
    """Case-folded, accents and punctuation stripped, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(text.split())


def _exact(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    return float(answer.strip() == str(expected).strip())


def _normalised(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    return float(normalise(answer) == normalise(str(expected)))


def _contains(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    if params.get("normalise", True):
        return float(normalise(str(expected)) in normalise(answer))
    return float(str(expected) in answer)


def _regex(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    flags = re.IGNORECASE if params.get("ignore_case") else 0
    return float(re.search(str(expected), answer, flags) is not None)


def _json_field(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    try:
        value: Any = json.loads(answer)
    except ValueError:
        return 0.0
    for key in str(params["field"]).split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return 0.0
    return float(value == expected)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numeric(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    found = _NUMBER.findall(answer.replace(",", ""))
    if not found:
        return 0.0
    value, want = float(found[-1]), float(expected)
    tolerance = float(params.get("tolerance", 0.0))
    if params.get("relative"):
        tolerance *= abs(want)
    return float(abs(value - want) <= tolerance)


def _judged(answer: str, expected: Any, params: Mapping[str, Any]) -> float:
    from drkit.errors import UsageError

    raise UsageError(
        "scorer llm_judge asks a plan route to grade the answer: it scores only in "
        "`drkit eval run` (drkit.evals.judge), not on its own"
    )


register("exact", _exact)
register("normalised", _normalised)
register("contains", _contains, frozenset({"normalise"}))
register("regex", _regex, frozenset({"ignore_case"}))
register("json_field", _json_field, frozenset({"field"}))
register("numeric", _numeric, frozenset({"tolerance", "relative"}))
register("llm_judge", _judged, frozenset({"route", "criteria"}))

#: parameters a scorer cannot do without
REQUIRED: dict[str, frozenset[str]] = {
    "json_field": frozenset({"field"}),
    "llm_judge": frozenset({"route"}),
}
#: scorers that call a model (the runner awaits them through a :class:`~drkit.evals.judge.Judge`)
JUDGED = frozenset({"llm_judge"})
