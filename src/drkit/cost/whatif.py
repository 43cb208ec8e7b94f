"""What-if: change the plan on paper and price the difference (``drkit cost --what-if``).

Two forms, repeatable, applied in order to a copy of the plan:

- ``NAME=TIER``: move the component or route ``NAME`` to ``TIER``;
- ``TIER.FIELD=VALUE``: change a tier's ``rto``, ``rpo``, ``multi_region`` or ``critical``.

A tier that is not ``multi_region`` does not buy the second region, so what such a change
takes out of a multi-region tier gives it up: its components lose their replicas in
other regions (their storage and egress are saved; a region loss then loses the data),
and its routes lose their targets outside the primary's region (the outage loss rises).
Nothing else is assumed: schedules, prices and measurements stay as they are. The report
is the difference of two :func:`drkit.cost.model.estimate` runs over the same
measurements, plus the plan-check findings the change would add.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drkit.cost.model import PLAN_WIDE, CostReport, Measurements, estimate
from drkit.errors import UsageError
from drkit.plan.analysis import achievable_rpo, offsite_replicas
from drkit.plan.lint import lint
from drkit.plan.models import Component, Plan, Route
from drkit.types import format_duration, parse_duration

TIER_FIELDS = ("rto", "rpo", "multi_region", "critical")
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Change:
    """One parsed ``--what-if``: ``subject`` is a component, route or tier name."""

    spec: str
    subject: str
    field: str | None  # None: move ``subject`` to the tier ``value``
    value: str


def parse(spec: str) -> Change:
    """``NAME=TIER`` or ``TIER.FIELD=VALUE`` (:class:`UsageError` on anything else)."""
    left, sep, value = spec.partition("=")
    left, value = left.strip(), value.strip()
    if not sep or not left or not value:
        raise UsageError(
            f"--what-if {spec!r} is not NAME=TIER or TIER.FIELD=VALUE",
            hint="e.g. --what-if kb=standard or --what-if critical.multi_region=false",
        )
    subject, dot, field_name = left.partition(".")
    return Change(spec, subject, field_name if dot else None, value)


def _bool(change: Change) -> bool:
    try:
        return _BOOLS[change.value.lower()]
    except KeyError:
        raise UsageError(
            f"--what-if {change.spec!r}: {change.field} takes true or false",
            hint=f"e.g. --what-if {change.subject}.{change.field}=false",
        ) from None


def apply(plan: Plan, changes: Sequence[Change]) -> tuple[Plan, list[str]]:
    """A changed copy of ``plan`` and what was done, one sentence per effect."""
    new = copy.deepcopy(plan)
    done: list[str] = []
    for change in changes:
        was_multi = _multi_region_of(new)
        if change.field is None:
            done += _move(new, change)
        else:
            done += _set_tier_field(new, change)
        done += _give_up_second_region(new, was_multi)
    return new, done


def _tier(plan: Plan, name: str, change: Change) -> None:
    if name not in plan.tiers:
        raise UsageError(
            f"--what-if {change.spec!r}: the plan has no tier {name!r}",
            hint="one of: " + ", ".join(sorted(plan.tiers)),
        )


def _elements(plan: Plan) -> dict[str, Component | Route]:
    out: dict[str, Component | Route] = {c.name: c for _, c in plan.components()}
    out.update({r.name: r for r in plan.serving.routes})
    return out


def _move(plan: Plan, change: Change) -> list[str]:
    element = _elements(plan).get(change.subject)
    if element is None:
        if change.subject in plan.tiers:
            raise UsageError(
                f"--what-if {change.spec!r}: {change.subject!r} is a tier; name one of its fields",
                hint=f"e.g. --what-if {change.subject}.multi_region=false "
                f"(fields: {', '.join(TIER_FIELDS)})",
            )
        raise UsageError(
            f"--what-if {change.spec!r}: the plan has no component or route {change.subject!r}",
            hint="one of: " + ", ".join(sorted(_elements(plan))),
        )
    _tier(plan, change.value, change)
    before = element.tier or PLAN_WIDE
    element.tier = change.value
    return [f"{change.subject}: tier {before} -> {change.value}"]


def _set_tier_field(plan: Plan, change: Change) -> list[str]:
    _tier(plan, change.subject, change)
    if change.field not in TIER_FIELDS:
        raise UsageError(
            f"--what-if {change.spec!r}: a tier has no field {change.field!r} to change",
            hint="one of: " + ", ".join(TIER_FIELDS),
        )
    tier = plan.tiers[change.subject]
    value: float | bool
    if change.field in ("rto", "rpo"):
        try:
            value = parse_duration(change.value)
        except ValueError as exc:
            raise UsageError(
                f"--what-if {change.spec!r}: {exc}", hint=f"e.g. {change.subject}.rto=1h"
            ) from exc
        if value <= 0:
            raise UsageError(
                f"--what-if {change.spec!r}: {change.field} must be positive",
                hint=f"e.g. {change.subject}.{change.field}=1h",
            )
    else:
        value = _bool(change)
    before = getattr(tier, change.field)
    setattr(tier, change.field, value)
    after = getattr(tier, change.field)
    if change.field in ("rto", "rpo"):
        before, after = format_duration(before), format_duration(after)
    return [f"tier {change.subject}: {change.field} {before} -> {after}"]


def _multi_region_of(plan: Plan) -> dict[str, bool]:
    """Per component and route: whether its tier is multi-region now."""
    return {
        name: bool(e.tier and e.tier in plan.tiers and plan.tiers[e.tier].multi_region)
        for name, e in _elements(plan).items()
    }


def _give_up_second_region(plan: Plan, was_multi: dict[str, bool]) -> list[str]:
    done: list[str] = []
    now_multi = _multi_region_of(plan)
    for _, comp in plan.components():
        if not was_multi.get(comp.name) or now_multi.get(comp.name):
            continue
        far = [r.name for r in offsite_replicas(plan, comp)]
        if far:
            comp.replicate_to = [n for n in comp.replicate_to if n not in far]
            done.append(
                f"{comp.name}: no longer copied to {', '.join(far)} (other region; its "
                f"tier {comp.tier} is not multi_region)"
            )
    for route in plan.serving.routes:
        if not was_multi.get(route.name) or now_multi.get(route.name):
            continue
        home = route.targets[0].region
        far_targets = [t.name for t in route.targets if t.region != home]
        if far_targets:
            route.targets = [t for t in route.targets if t.region == home]
            done.append(
                f"route {route.name}: targets {', '.join(far_targets)} dropped (outside "
                f"{home}; its tier {route.tier} is not multi_region)"
            )
    return done


def _objectives(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per component and route: its tier's RTO/RPO targets and what the plan achieves."""
    out: dict[str, dict[str, Any]] = {}
    for name, e in _elements(plan).items():
        tier = plan.tiers.get(e.tier) if e.tier else None
        row: dict[str, Any] = {
            "tier": e.tier,
            "rto_target_s": tier.rto if tier else None,
            "rpo_target_s": tier.rpo if tier else None,
        }
        if isinstance(e, Route):
            row["targets"] = [t.name for t in e.targets]
        else:
            est = achievable_rpo(plan, e)
            far = offsite_replicas(plan, e)
            row["rpo_achievable_s"] = est.total if est else None
            row["offsite_copies"] = [r.name for r in far]
            # a region loss loses everything no other region holds (None: all of it)
            row["rpo_region_loss_s"] = est.total if est and far else None
        out[name] = row
    return out


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _r(b - a)


def _tier_rows(report: CostReport, plan: Plan) -> dict[str, dict[str, Any]]:
    return {
        t.tier: {"monthly": t.monthly, "outage_loss_year": t.outage_loss_year}
        for t in report.tiers(plan)
    }


def _r(x: float | None) -> float | None:
    """Rounded for JSON, finely enough that a measured trickle stays visible."""
    return None if x is None else round(x, 8)


def _loss(report: CostReport) -> float | None:
    losses = list(report.route_loss_year.values())
    return None if None in losses else sum(x or 0.0 for x in losses)


def what_if(
    plan: Plan,
    specs: Sequence[str],
    measured: Measurements | None = None,
) -> dict[str, Any]:
    """Price ``plan`` with and without ``specs``, and list the plan-check findings (of
    :func:`drkit.plan.lint.lint`) that only the changed plan has."""
    changes = [parse(s) for s in specs]
    new, done = apply(plan, changes)
    base, after = estimate(plan, measured), estimate(new, measured)
    base_tiers, new_tiers = _tier_rows(base, plan), _tier_rows(after, new)
    tiers = []
    for name in dict.fromkeys([*base_tiers, *new_tiers]):
        b, n = base_tiers.get(name, {}), new_tiers.get(name, {})
        tiers.append(
            {
                "tier": name,
                "monthly_before": _r(b.get("monthly", 0.0)),
                "monthly_after": _r(n.get("monthly", 0.0)),
                "monthly_delta": _delta(b.get("monthly", 0.0), n.get("monthly", 0.0)),
                "outage_loss_year_before": _r(b.get("outage_loss_year")),
                "outage_loss_year_after": _r(n.get("outage_loss_year")),
                "outage_loss_year_delta": _delta(
                    b.get("outage_loss_year"), n.get("outage_loss_year")
                ),
            }
        )
    before_obj, after_obj = _objectives(plan), _objectives(new)
    touched = {c.subject for c in changes if c.field is None} | {
        name
        for name, row in before_obj.items()
        if row != after_obj.get(name) or any(c.subject == row["tier"] for c in changes)
    }
    objectives = [
        {"name": name, "before": before_obj[name], "after": after_obj[name]}
        for name in before_obj
        if name in touched
    ]
    known = {(v.rule, v.message) for v in lint(plan)}
    added = [
        {"rule": v.rule, "severity": str(v.severity), "message": v.message}
        for v in lint(new)
        if (v.rule, v.message) not in known
    ]
    loss_before, loss_after = _loss(base), _loss(after)
    return {
        "plan": plan.name,
        "currency": plan.cost.currency,
        "what_if": list(specs),
        "changes": done,
        "monthly_before": _r(base.monthly),
        "monthly_after": _r(after.monthly),
        "monthly_delta": _delta(base.monthly, after.monthly),
        "yearly_delta": _r((after.monthly - base.monthly) * 12),
        "outage_loss_year_before": _r(loss_before),
        "outage_loss_year_after": _r(loss_after),
        "outage_loss_year_delta": _delta(loss_before, loss_after),
        "tiers": tiers,
        "objectives": objectives,
        "new_findings": added,
    }
