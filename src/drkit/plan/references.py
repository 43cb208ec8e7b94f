"""Cross references of a validated plan: unique names, and every tier, repository,
dataset, route and component a plan entry names is defined (with a "did you mean" guess).

Errors are :class:`drkit.errors.PlanError` located at the referring entry's file:line.
"""

from __future__ import annotations

import difflib

from drkit.errors import PlanError
from drkit.plan.models import Plan
from drkit.plan.source import PathKey


def _ref_error(
    plan: Plan, path: PathKey, what: str, name: str, known: list[str], hint: str
) -> PlanError:
    loc = plan.locate(*path)
    choices = ", ".join(known) if known else "none defined"
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return PlanError(
        f"{what} {name!r} is not defined{guess}; defined: {choices}",
        file=loc.file,
        line=loc.line,
        field=loc.field,
        hint=hint,
    )


def _check_unique(plan: Plan, items: list[tuple[PathKey, str]], what: str) -> None:
    seen: dict[str, PathKey] = {}
    for path, name in items:
        if name in seen:
            first = plan.locate(*seen[name])
            loc = plan.locate(*path)
            at = f" (first at line {first.line})" if first.line else ""
            raise PlanError(
                f"duplicate {what} name {name!r}{at}",
                file=loc.file,
                line=loc.line,
                field=loc.field,
                hint=f"give every {what} a unique name",
            )
        seen[name] = path


def check_references(plan: Plan) -> None:
    """Duplicate names and references to undefined tiers, repositories, datasets, components.

    The checks run in this order, and the first failure is the one reported."""
    named = _check_names(plan)
    _check_tiers(plan)
    _check_replicas(plan)
    _check_datasets(plan)
    _check_scheduled_evals(plan)
    _check_status_covers(plan, [name for _, name in named])
    _check_cost_sizes(plan)


def _check_names(plan: Plan) -> list[tuple[PathKey, str]]:
    """Unique names per kind; the routes' and components' names (one namespace) returned."""
    repos: list[tuple[PathKey, str]] = [
        (("repositories", "primary", "name"), plan.repositories.primary.name)
    ]
    repos += [
        (("repositories", "replicas", i, "name"), r.name)
        for i, r in enumerate(plan.repositories.replicas)
    ]
    _check_unique(plan, repos, "repository")
    named: list[tuple[PathKey, str]] = [
        (("serving", "routes", i, "name"), r.name) for i, r in enumerate(plan.serving.routes)
    ]
    named += [((*path, "name"), c.name) for path, c in plan.components()]
    _check_unique(plan, named, "route/component")
    for i, route in enumerate(plan.serving.routes):
        _check_unique(
            plan,
            [
                (("serving", "routes", i, "targets", j, "name"), t.name)
                for j, t in enumerate(route.targets)
            ],
            "target",
        )
    _check_unique(
        plan, [(("providers", i, "name"), p.name) for i, p in enumerate(plan.providers)], "provider"
    )
    _check_unique(
        plan,
        [
            (("status_page", "components", i, "name"), c.name)
            for i, c in enumerate(plan.status_page.components)
        ],
        "status component",
    )
    return named


def _check_tiers(plan: Plan) -> None:
    tiers = list(plan.tiers)
    tier_hint = "define the tier under `tiers:` or use one of the defined tiers"
    tier_refs: list[tuple[PathKey, str | None]] = [
        (("serving", "routes", i, "tier"), r.tier) for i, r in enumerate(plan.serving.routes)
    ]
    tier_refs += [((*path, "tier"), c.tier) for path, c in plan.components()]
    tier_refs += [(("cost", "standby_per_month", t), t) for t in plan.cost.standby_per_month]
    tier_refs += [(("cost", "outage_cost_per_hour", t), t) for t in plan.cost.outage_cost_per_hour]
    for path, tier in tier_refs:
        if tier is not None and tier not in plan.tiers:
            raise _ref_error(plan, path, "tier", tier, tiers, tier_hint)


def _check_replicas(plan: Plan) -> None:
    replicas = [r.name for r in plan.repositories.replicas]
    for path, component in plan.components():
        for j, name in enumerate(component.replicate_to):
            if name == plan.repositories.primary.name:
                loc = plan.locate(*path, "replicate_to", j)
                raise PlanError(
                    f"{name!r} is the primary repository; replicate_to lists replicas",
                    file=loc.file,
                    line=loc.line,
                    field=loc.field,
                    hint="snapshots always go to the primary; name replicas here",
                )
            if name not in replicas:
                raise _ref_error(
                    plan,
                    (*path, "replicate_to", j),
                    "replica repository",
                    name,
                    replicas,
                    "add it under repositories.replicas or fix the name",
                )


def _check_datasets(plan: Plan) -> None:
    datasets = [d.name for d in plan.datasets]
    for i, model in enumerate(plan.models):
        for j, used in enumerate(model.trained_on):
            if used.dataset not in datasets:
                raise _ref_error(
                    plan,
                    ("models", i, "trained_on", j, "dataset"),
                    "dataset",
                    used.dataset,
                    datasets,
                    "add the dataset under `datasets:` or fix the name",
                )


def _check_scheduled_evals(plan: Plan) -> None:
    routes = [r.name for r in plan.serving.routes]
    for i, scheduled in enumerate(plan.testing.scheduled_evals):
        if scheduled.route not in routes:
            raise _ref_error(
                plan,
                ("testing", "scheduled_evals", i, "route"),
                "route",
                scheduled.route,
                routes,
                "name a route of serving.routes",
            )


def _check_status_covers(plan: Plan, names: list[str]) -> None:
    for i, comp in enumerate(plan.status_page.components):
        for j, covered in enumerate(comp.covers):
            if covered not in names:
                raise _ref_error(
                    plan,
                    ("status_page", "components", i, "covers", j),
                    "route or component",
                    covered,
                    names,
                    "name a route or a component of the plan",
                )
    shown = [c.name for c in plan.status_page.components]
    for group in ("subscribers", "escalation"):
        for i, contact in enumerate(getattr(plan.status_page, group)):
            for j, followed in enumerate(contact.components):
                if followed not in shown:
                    raise _ref_error(
                        plan,
                        ("status_page", group, i, "components", j),
                        "status component",
                        followed,
                        shown,
                        "name a component of status_page.components",
                    )


def _check_cost_sizes(plan: Plan) -> None:
    components = [c.name for _, c in plan.components()]
    for name in plan.cost.sizes_gb:
        if name not in components:
            raise _ref_error(
                plan,
                ("cost", "sizes_gb", name),
                "component",
                name,
                components,
                "sizes_gb is keyed by component name",
            )
