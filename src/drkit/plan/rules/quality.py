"""Quality as a recovery objective: critical routes watched for wrong answers, gates
whose eval sets can detect what they tolerate (docs/evals.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from drkit.plan.analysis import critical_routes
from drkit.plan.lint import Finding, LintContext, Severity, rule
from drkit.plan.models import Plan
from drkit.plan.quality import min_detectable_drop, resolve


@rule(
    "DR403",
    "critical-route-quality",
    Severity.WARNING,
    "every critical route has a quality floor and a quality canary or a scheduled eval",
    "Quality is a recovery objective: a provider answering HTTP 200 with wrong answers is "
    "down for its users.",
)
def critical_route_quality(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, route in critical_routes(plan):
        # the floor each watch gates on, resolved as the canary and the agent resolve it
        canary = route.canary
        canary_floor = resolve(
            plan, eval_set=Path(canary.eval_set).stem if canary else "", route=route.name
        ).floor
        scheduled = [
            (
                s.eval_set,
                resolve(
                    plan,
                    eval_set=Path(s.eval_set).stem,
                    file=plan.resolve_path(s.eval_set),
                    route=route.name,
                ).floor,
            )
            for s in plan.testing.scheduled_evals
            if s.route == route.name
        ]
        if (canary is not None and canary_floor is not None) or any(
            f is not None for _, f in scheduled
        ):
            continue
        where = ("serving", "routes", i)
        if canary_floor is None:
            yield Finding(
                where,
                f"critical route {route.name!r} has no quality floor: no eval run or canary "
                "through it can fail on wrong answers, only on errors",
                "set one on the route: `quality: {floor: 0.9}` "
                "(docs/evals.md#verdicts-and-thresholds)",
            )
        elif scheduled:
            yield Finding(
                where,
                f"critical route {route.name!r}: its scheduled eval of {scheduled[0][0]!r} "
                f"runs with no quality floor (the route's {canary_floor:g} comes from its "
                "tier, and the eval set's own tier comes first), and there is no canary",
                "set the floor on the route (`quality: {floor: ...}`) or on the eval set "
                "entry (docs/plan.md#quality-eval-thresholds)",
            )
        else:
            yield Finding(
                where,
                f"critical route {route.name!r} has a quality floor ({canary_floor:g}) but "
                "neither a quality canary nor a scheduled eval: a target answering wrongly "
                "with HTTP 200 keeps its traffic until someone runs an eval",
                "add `canary: {eval_set: evals/canary.jsonl, every: 60s}` to the route "
                "(docs/evals.md#the-quality-canary), or a `testing.scheduled_evals` entry "
                f"with `route: {route.name}` (docs/evals.md#scheduled-evals)",
            )


def _examples(root: Path) -> int | None:
    """Examples in the JSONL files at ``root`` (a file or a directory); None: none found."""
    files = [root] if root.is_file() else sorted(root.rglob("*.jsonl")) if root.is_dir() else []
    if not files:
        return None
    n = 0
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        n += sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return n


@rule(
    "DR404",
    "gate-set-detects-its-drop",
    Severity.WARNING,
    "an eval set with a tolerated drop is large enough to detect that drop at its "
    "significance level",
    "Historical eval results: regression detection needs enough examples to tell a real "
    "drop from noise.",
)
def gate_set_detects_its_drop(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    for i, es in enumerate(plan.eval_sets):
        t = resolve(plan, eval_set=es.name, file=plan.resolve_path(es.path))
        if t.sources["max_drop"] == "default" or t.max_drop <= 0:
            continue
        n = _examples(plan.resolve_path(es.path))
        if not n:
            continue
        smallest = min_detectable_drop(n, t.alpha)
        if smallest > t.max_drop:
            need = next(
                (m for m in range(n, 100 * n + 1) if min_detectable_drop(m, t.alpha) <= t.max_drop),
                None,
            )
            yield Finding(
                ("eval_sets", i),
                f"eval set {es.name!r} has {n} examples: the smallest drop a paired test can "
                f"detect at alpha {t.alpha:g} is {smallest:.3f}, more than its tolerated "
                f"drop {t.max_drop:g} ({t.sources['max_drop']})",
                (f"grow it to at least {need} examples, " if need else "add examples, ")
                + "or raise the tolerated drop",
            )


@rule(
    "DR405",
    "gate-sets-declared",
    Severity.ERROR,
    "a route's canary eval set and every scheduled eval's set lie inside an eval set of the "
    "plan (so DR401 has them backed up and replicated)",
    "Eval sets are intellectual property. Version controlled, backed up, replicated.",
)
def gate_sets_declared(plan: Plan, ctx: LintContext) -> Iterator[Finding]:
    declared = [plan.resolve_path(es.path).resolve() for es in plan.eval_sets]
    used: list[tuple[tuple[str | int, ...], str, str]] = [
        (
            ("serving", "routes", i, "canary", "eval_set"),
            route.canary.eval_set,
            f"route {route.name!r} gates on the canary eval set",
        )
        for i, route in enumerate(plan.serving.routes)
        if route.canary is not None
    ]
    used += [
        (
            ("testing", "scheduled_evals", i, "eval_set"),
            s.eval_set,
            f"the scheduled eval of route {s.route!r} runs the eval set",
        )
        for i, s in enumerate(plan.testing.scheduled_evals)
    ]
    for where, eval_set, what in used:
        path = plan.resolve_path(eval_set).resolve()
        if any(path == root or path.is_relative_to(root) for root in declared):
            continue
        yield Finding(
            where,
            f"{what} {eval_set!r}, which is in no eval set of the plan: nothing backs it up "
            "or replicates it",
            "add an `eval_sets:` entry whose path holds it (with a schedule and replicate_to)",
        )
