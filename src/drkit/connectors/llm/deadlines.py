"""The four deadlines of one upstream attempt (no HTTP library needed to import it).

Kept apart from :mod:`drkit.connectors.llm.client` so that the gateway's config, the
workspace and the drills can name deadlines without the gateway extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from drkit.plan.models import Deadlines as PlanDeadlines

_PLAN_DEADLINES = PlanDeadlines()


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds allowed for each phase of one attempt.

    The runtime twin of the plan's ``serving.routes[].deadlines`` (a plain frozen
    dataclass: one is built per attempt on the hot path); its defaults are the plan's.
    """

    connect: float = _PLAN_DEADLINES.connect
    first_token: float = _PLAN_DEADLINES.first_token
    stream_idle: float = _PLAN_DEADLINES.stream_idle
    total: float = _PLAN_DEADLINES.total
