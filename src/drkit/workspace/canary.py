"""The gateway's quality canary composed from the plan: drkit.evals' eval sets and scorers
handed to :class:`drkit.gateway.canary.QualityCanary` (the gateway and the evals are
siblings and never import each other; this is where they meet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drkit.errors import PlanError
from drkit.plan.models import Plan
from drkit.plan.quality import resolve

if TYPE_CHECKING:
    from drkit.gateway.canary import QualityCanary


def canary_from_plan(plan: Plan) -> QualityCanary | None:
    """The canary of every route with ``canary:`` (None when no route has one).

    A route's floor is its ``quality.floor`` (else its tier's); a canary without one is a
    plan error, as is a canary eval set that does not load (``file:line``)."""
    from drkit.evals.evalset import load_eval_set
    from drkit.evals.scorers import JUDGED
    from drkit.gateway.canary import CanarySpec, QualityCanary

    specs: list[CanarySpec] = []
    for i, route in enumerate(plan.serving.routes):
        c = route.canary
        if c is None:
            continue
        es = load_eval_set(plan.resolve_path(c.eval_set))
        judged = [ex for ex in es.examples if ex.scorer in JUDGED]
        if judged:
            loc = plan.locate("serving", "routes", i, "canary", "eval_set")
            raise PlanError(
                f"the canary set {es.name} scores {judged[0].id!r} with {judged[0].scorer}: "
                "the gateway's canary scores answers itself, without calling a model",
                file=loc.file,
                line=loc.line,
                field=loc.field,
                hint="give the canary a set with exact/contains/regex/... scorers",
            )
        floor = resolve(plan, eval_set=es.name, route=route.name).floor
        if floor is None:
            loc = plan.locate("serving", "routes", i, "canary")
            raise PlanError(
                f"the canary of route {route.name} needs a quality floor",
                file=loc.file,
                line=loc.line,
                field=loc.field,
                hint="set serving.routes[].quality.floor (or the tier's quality.floor)",
            )
        specs.append(
            CanarySpec(
                route=route.name,
                examples=es.examples,
                floor=floor,
                every=float(c.every),
                max_share=c.max_share,
                max_tokens=c.max_tokens,
                eval_set=es.name,
                eval_set_digest=es.digest,
            )
        )
    return QualityCanary(specs) if specs else None
