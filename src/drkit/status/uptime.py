"""90-day uptime bars: each day's share of time a component was available.

Weights (Statuspage's convention, plus drkit's ``degraded_quality``): a second in
``major_outage`` counts as a second of downtime, ``partial_outage`` and
``degraded_quality`` as :data:`WEIGHTS` of one (part of the traffic gets no answer or a
wrong one), ``degraded_performance`` as none (answers arrive, slower). Seconds
``under_maintenance`` are excluded from both the downtime and the time observed, so a drill
never dents the bars. Days before the first signal of drkit's state are "no data".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drkit.status.states import Change, State

DAY_S = 86400.0
#: downtime weight of one second in each state (maintenance is excluded instead)
WEIGHTS: dict[State, float] = {
    State.OPERATIONAL: 0.0,
    State.DEGRADED_PERFORMANCE: 0.0,
    State.DEGRADED_QUALITY: 0.3,
    State.PARTIAL_OUTAGE: 0.3,
    State.MAJOR_OUTAGE: 1.0,
}


@dataclass(frozen=True, slots=True)
class Day:
    start: float  # epoch seconds, UTC midnight
    uptime: float | None  # 0..1; None: no data (or maintenance all day)
    worst: State
    seconds: dict[str, float]  # state -> seconds spent in it that day

    @property
    def level(self) -> str:
        """A CSS class for the bar: the day's worst state, or ``nodata``."""
        return "nodata" if self.uptime is None else self.worst.value


def bars(
    changes: Sequence[Change], component: str, *, now: float, days: int = 90, since: float
) -> list[Day]:
    """``days`` bars ending today (UTC) for ``component``; ``since`` is when data begins."""
    mine = [c for c in changes if c.component == component]
    today = now - now % DAY_S
    out: list[Day] = []
    for d in range(days - 1, -1, -1):
        lo = today - d * DAY_S
        hi = min(lo + DAY_S, now)
        out.append(_day(mine, lo, hi, since))
    return out


def _day(mine: Sequence[Change], lo: float, hi: float, since: float) -> Day:
    seconds: dict[str, float] = {}
    begin = max(lo, since)
    if begin >= hi or not mine:
        return Day(lo, None, State.OPERATIONAL, seconds)
    state = State.OPERATIONAL
    at = begin
    worst = State.OPERATIONAL
    for c in mine:
        if c.at <= begin:
            state = c.state
            continue
        if c.at >= hi:
            break
        seconds[state.value] = seconds.get(state.value, 0.0) + (c.at - at)
        worst = max(worst, state, key=lambda s: s.severity)
        state, at = c.state, c.at
    seconds[state.value] = seconds.get(state.value, 0.0) + (hi - at)
    worst = max(worst, state, key=lambda s: s.severity)
    return Day(lo, _share(seconds), worst, seconds)


def _share(seconds: dict[str, float]) -> float | None:
    observed = sum(v for k, v in seconds.items() if k != State.UNDER_MAINTENANCE.value)
    if observed <= 0:
        return None
    down = sum(WEIGHTS[State(k)] * v for k, v in seconds.items() if State(k) in WEIGHTS)
    return max(0.0, 1.0 - down / observed)


def overall(days: Sequence[Day]) -> float | None:
    """Uptime over the bars' whole period, weighted by observed time."""
    total: dict[str, float] = {}
    for d in days:
        for k, v in d.seconds.items():
            total[k] = total.get(k, 0.0) + v
    return _share(total)
