"""Lint a plan against the DR framework: a registry of rules, each yielding findings.

A rule is data (id, name, default severity, summary, the framework line it enforces)
plus a check function ``(plan, context) -> findings``. Built-in rules live in
:mod:`drkit.plan.rules`; other layers add their own with :func:`register` (or the
:func:`rule` decorator) — e.g. "drill overdue" rules that read drkit's state through
the callables of :class:`LintContext`. Rules that need state declare ``needs`` and are
skipped when the context does not provide it, so ``drkit plan check`` on a bare plan
stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from drkit.plan.models import Plan
from drkit.plan.source import PathKey


class Severity(StrEnum):
    ERROR = "error"  # fails `drkit plan check` (exit 1)
    WARNING = "warning"  # shown, does not fail
    INFO = "info"  # advice


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

#: What a rule may need from drkit's state beyond the plan.
Need = Literal["last_success", "dataset_versions"]


@dataclass(frozen=True)
class LintContext:
    """What rules may know beyond the plan. Missing capabilities skip the rules needing them.

    - ``now``: the moment "overdue" is measured against;
    - ``last_success(activity, subject)``: when an activity (``"restore_test"``,
      ``"failover_drill"``, ``"regional_failover"``, ``"backup"``...) last succeeded for a
      subject (a component or route name, or ``None`` for plan-wide), or ``None`` if never;
    - ``dataset_versions(dataset)``: the versions known to exist, or ``None`` if unknown.
    """

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_success: Callable[[str, str | None], datetime | None] | None = None
    dataset_versions: Callable[[str], Collection[str] | None] | None = None

    def provides(self, need: Need) -> bool:
        return getattr(self, need) is not None


@dataclass(frozen=True)
class Finding:
    """What a check function yields: where, what, what to do (severity defaults to the rule's)."""

    path: PathKey
    message: str
    hint: str
    severity: Severity | None = None


@dataclass(frozen=True)
class Violation:
    """A finding located in the plan file, as reported by ``drkit plan check``."""

    rule: str
    name: str
    severity: Severity
    message: str
    hint: str
    file: str | None
    line: int | None
    field: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": str(self.severity),
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
            "field": self.field,
        }

    @property
    def where(self) -> str:
        out = self.file or "<plan>"
        return f"{out}:{self.line}" if self.line is not None else out


Check = Callable[[Plan, LintContext], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str  # stable, e.g. "DR101"
    name: str  # a slug, e.g. "critical-route-providers"
    severity: Severity
    summary: str  # one line: what must hold
    framework: str  # the framework sentence it enforces
    check: Check
    needs: tuple[Need, ...] = ()


_RULES: dict[str, Rule] = {}


def register(new: Rule) -> Rule:
    """Add a rule to the registry; ids and names are unique."""
    for existing in _RULES.values():
        if existing.id == new.id or existing.name == new.name:
            raise ValueError(f"lint rule {new.id}/{new.name} is already registered")
    _RULES[new.id] = new
    return new


def unregister(rule_id: str) -> None:
    """Remove a rule (tests, and plugins that replace a built-in)."""
    _RULES.pop(rule_id, None)


def rule(
    id: str,
    name: str,
    severity: Severity,
    summary: str,
    framework: str,
    needs: tuple[Need, ...] = (),
) -> Callable[[Check], Check]:
    """Decorator form of :func:`register` for a check function."""

    def wrap(check: Check) -> Check:
        register(Rule(id, name, severity, summary, framework, check, needs))
        return check

    return wrap


def rules() -> list[Rule]:
    """Every registered rule (built-ins included), by id."""
    _load_builtins()
    return sorted(_RULES.values(), key=lambda r: r.id)


def _load_builtins() -> None:
    import drkit.plan.rules  # noqa: F401 - registers the built-in rules on import


def lint(
    plan: Plan, context: LintContext | None = None, *, only: Collection[str] | None = None
) -> list[Violation]:
    """Run every applicable rule; violations sorted by severity, then file position."""
    ctx = context or LintContext()
    found: list[Violation] = []
    for r in rules():
        if only is not None and r.id not in only and r.name not in only:
            continue
        if not all(ctx.provides(need) for need in r.needs):
            continue
        for finding in r.check(plan, ctx):
            found.append(locate(plan, r, finding))
    found.sort(key=lambda v: (_SEVERITY_ORDER[v.severity], v.line or 0, v.rule))
    return found


def locate(plan: Plan, rule: Rule, finding: Finding) -> Violation:
    """``rule``'s ``finding`` as a violation located in the plan file."""
    loc = plan.locate(*finding.path)
    return Violation(
        rule=rule.id,
        name=rule.name,
        severity=finding.severity or rule.severity,
        message=finding.message,
        hint=finding.hint,
        file=loc.file,
        line=loc.line,
        field=loc.field,
    )


def count(violations: Iterable[Violation], severity: Severity) -> int:
    return sum(1 for v in violations if v.severity == severity)
