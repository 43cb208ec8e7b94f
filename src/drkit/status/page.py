"""What the status page shows, read from drkit's state and the plan: one function per view.

:func:`snapshot` reads the events once and derives everything a page needs (states,
uptime bars, incidents), so the HTML page, the JSON API and the feed agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drkit.status import uptime
from drkit.status.incidents import Incident, fold
from drkit.status.states import (
    Change,
    PageComponent,
    Signal,
    State,
    current_states,
    replay,
    rollup,
)

if TYPE_CHECKING:
    from drkit.plan.models import Plan
    from drkit.state.store import Event, StateStore

#: event kinds the war-room timeline shows beside the incident's own
TIMELINE_KINDS = ("gateway.", "drill.", "eval.", "model.", "rpo.", "job.", "verify.", "agent.")
#: how far before an incident opened its timeline starts
TIMELINE_LEAD_S = 900.0
DAYS = 90


@dataclass(frozen=True, slots=True)
class ComponentView:
    name: str
    description: str | None
    state: State
    cause: str
    since: float
    bars: list[uptime.Day]
    uptime: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    title: str
    now: float
    components: list[ComponentView]
    changes: list[Change]
    incidents: list[Incident]  # newest first, drafts included (the internal side's)

    @property
    def state(self) -> State:
        return rollup(c.state for c in self.components)

    @property
    def states(self) -> dict[str, State]:
        return {c.name: c.state for c in self.components}

    @property
    def public_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if i.public]

    @property
    def unresolved(self) -> list[Incident]:
        return [i for i in self.public_incidents if not i.resolved]


def page_components(plan: Plan) -> list[PageComponent]:
    return [
        PageComponent(c.name, tuple(c.covers), c.description) for c in plan.status_page.components
    ]


def plan_routes(plan: Plan) -> dict[str, list[str]]:
    """Each route's targets in failover order."""
    return {r.name: [t.name for t in r.targets] for r in plan.serving.routes}


def signals(state: StateStore, since: float | None = None) -> list[Signal]:
    """drkit's events and restore tests as signals (restore tests as ``verify.ok|failed``)."""
    out = [Signal(e.at, e.kind, e.component, e.data, e.message) for e in state.events(since=since)]
    for v in state.verifications():
        if since is None or v.at >= since:
            kind = "verify.ok" if v.ok else "verify.failed"
            out.append(
                Signal(
                    v.at,
                    kind,
                    v.component,
                    {},
                    f"restore test of {v.component}" + (" passed" if v.ok else " failed"),
                )
            )
    return out


#: a drill that started and never ended (its process was killed) keeps the page in
#: maintenance at most this long
OPEN_DRILL_S = 3600.0


def maintenance_windows(
    state: StateStore, now: float | None = None
) -> list[tuple[float, float, str]]:
    """Drill windows: each journal's start to end, and each ``drill.started`` to its
    ``drill.ended`` (a drill still running: up to ``now``, for at most an hour)."""
    now = time.time() if now is None else now
    out = [
        (
            float(d.journal["started_at"]),
            float(d.journal.get("ended_at", d.at)),
            f"drill {d.scenario} ({d.id})",
        )
        for d in state.drills()
    ]
    lifted = {
        str(e.data.get("drill")): e.at for e in state.events(kind="gateway.live_fault_lifted")
    }
    out += [  # a live drill's fault on the running gateway: from install to lift
        (
            e.at,
            lifted.get(str(e.data.get("drill")), float(e.data.get("ends_at", e.at))),
            f"live drill {e.data.get('drill')}",
        )
        for e in state.events(kind="gateway.live_fault")
    ]
    marks = state.events(kind="drill.", since=now - OPEN_DRILL_S)
    for k, e in enumerate(marks):
        if e.kind != "drill.started" or e.at > now:
            continue
        scenario = str(e.data.get("scenario", e.component))
        ended = next(
            (x.at for x in marks[k + 1 :] if x.kind == "drill.ended" and x.component == scenario),
            None,
        )
        if ended is None:  # still running
            out.append((e.at, now + 1e-3, f"drill {scenario} (running)"))
        else:  # the journal's window covers it, or the drill never started its steps
            out.append((e.at, ended, f"drill {scenario}"))
    return out


def snapshot(plan: Plan, state: StateStore, *, now: float | None = None) -> Snapshot:
    now = time.time() if now is None else now
    start = now - DAYS * uptime.DAY_S
    sigs = signals(state)
    comps = page_components(plan)
    changes = replay(
        comps,
        plan_routes(plan),
        sigs,
        maintenance=maintenance_windows(state, now),
        start=start,
        now=now,
    )
    first = min((s.at for s in sigs), default=now)
    latest = current_states(changes)
    views = []
    for c in comps:
        ch = latest.get(c.name)
        days = uptime.bars(changes, c.name, now=now, days=DAYS, since=first)
        views.append(
            ComponentView(
                c.name,
                c.description,
                ch.state if ch else State.OPERATIONAL,
                ch.cause if ch else "",
                ch.at if ch else now,
                days,
                uptime.overall(days),
            )
        )
    incidents = sorted(
        fold(state.events(kind="incident.")).values(), key=lambda i: i.created_at, reverse=True
    )
    return Snapshot(plan.status_page.title, now, views, changes, incidents)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    kind: str
    subject: str
    message: str


def timeline(
    plan: Plan, state: StateStore, incident: Incident, *, now: float | None = None
) -> list[TimelineEntry]:
    """The war room's timeline: the incident's events and every DR signal around it."""
    now = time.time() if now is None else now
    lo = incident.created_at - TIMELINE_LEAD_S
    hi = (incident.resolved_at or now) + 60.0
    covered = {
        n for c in plan.status_page.components if c.name in incident.components for n in c.covers
    }
    targets = {t.name for r in plan.serving.routes if r.name in covered for t in r.targets}
    out: list[TimelineEntry] = []
    for e in state.events(since=lo):
        if e.at > hi:
            break
        if e.kind.startswith("incident."):
            if e.component == incident.id:
                out.append(TimelineEntry(e.at, e.kind, e.component, e.message))
        elif e.kind.startswith(TIMELINE_KINDS) and _touches(e, covered, targets):
            out.append(TimelineEntry(e.at, e.kind, e.component, e.message))
    for d in state.drills():
        if lo <= d.at <= hi:
            out.append(
                TimelineEntry(d.at, "drill.journal", d.scenario, f"drill {d.id}: {d.verdict}")
            )
    return sorted(out, key=lambda t: t.at)


def _touches(e: Event, covered: set[str], targets: set[str]) -> bool:
    names = {e.component, *e.component.split("/")}
    for key in ("route", "target", "from", "to", "component"):
        if key in e.data:
            names.add(str(e.data[key]))
    return bool(names & (covered | targets)) or e.kind.startswith("drill.")


def changes_of(snapshot: Snapshot, components: Sequence[str]) -> list[Change]:
    return [c for c in snapshot.changes if c.component in components]


#: a component state from which a signal drafts an incident (maintenance never does)
DRAFT_FROM = State.DEGRADED_PERFORMANCE


def draft_incidents(plan: Plan, state: StateStore, snap: Snapshot) -> list[Incident]:
    """Draft an incident (not public) for each unwell component no open incident covers."""
    from drkit.status.incidents import Incidents

    covered = {c for i in snap.incidents if not i.closed for c in i.components}
    book = Incidents(state, [c.name for c in snap.components])
    drafted = []
    for c in snap.components:
        if c.name in covered or c.state == State.UNDER_MAINTENANCE:
            continue
        if c.state.severity >= DRAFT_FROM.severity:
            severity = "sev1" if c.state == State.MAJOR_OUTAGE else "sev2"
            drafted.append(
                book.open(
                    f"{c.name}: {c.state.label.lower()}",
                    components=[c.name],
                    severity=severity,
                    draft=True,
                    cause=c.cause,
                    body=f"We are investigating {c.state.label.lower()} of {c.name}.",
                    author="drkit",
                )
            )
    return drafted
