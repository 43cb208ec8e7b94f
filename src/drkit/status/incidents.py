"""Incidents, event-sourced: every change is an ``incident.*`` event in drkit's state.

Kinds (``component`` is the incident id; see ``docs/events.md``):

- ``incident.opened``: title, severity, components, impact (``None``: computed), draft;
- ``incident.updated``: a typed update (investigating, identified, monitoring, resolved)
  with its body; ``public`` is false for a drafted update until it is approved;
- ``incident.approved``: a person approved a drafted update (``update``) for the page;
- ``incident.role_set``: incident commander, communications lead or scribe;
- ``incident.discarded``: a person (or the drill that opened it) discarded a draft that
  never went public: a false alarm, or a drill's exercise.

An incident drafted by a signal (``draft``) is not public until one of its updates is
approved: incidents on the public page mean a person acknowledged them. Folding the events
(:func:`incidents`) is the only reader; writers validate before they append, so a refused
command writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drkit.errors import IncidentNotFound, InputError
from drkit.status.states import State

if TYPE_CHECKING:
    from drkit.state.store import Event, StateStore

STATUSES = ("investigating", "identified", "monitoring", "resolved")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
ROLES = ("commander", "communications", "scribe")
IMPACTS = ("none", "minor", "major", "critical")
#: Statuspage's impact of an incident from the worst state of what it affects
IMPACT_OF_STATE = {
    State.OPERATIONAL: "none",
    State.UNDER_MAINTENANCE: "none",
    State.DEGRADED_PERFORMANCE: "minor",
    State.DEGRADED_QUALITY: "minor",
    State.PARTIAL_OUTAGE: "major",
    State.MAJOR_OUTAGE: "critical",
}
MAX_TEXT = 10_000


@dataclass
class Update:
    id: str
    at: float
    status: str
    body: str
    public: bool
    author: str
    approved_at: float | None = None
    approved_by: str | None = None


@dataclass
class Incident:
    id: str
    title: str
    severity: str
    components: list[str]
    created_at: float
    impact_override: str | None = None
    draft: bool = False
    cause: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    updates: list[Update] = field(default_factory=list)
    discarded: str = ""  # why, when a draft was discarded

    @property
    def closed(self) -> bool:
        """Resolved, or a discarded draft: no signal needs another incident drafted."""
        return self.resolved or bool(self.discarded)

    @property
    def status(self) -> str:
        """The newest update's status (drafts included: the war room sees them)."""
        return self.updates[-1].status if self.updates else "investigating"

    @property
    def public_updates(self) -> list[Update]:
        return [u for u in self.updates if u.public]

    @property
    def public(self) -> bool:
        return bool(self.public_updates)

    @property
    def public_status(self) -> str:
        ups = self.public_updates
        return ups[-1].status if ups else "investigating"

    @property
    def resolved_at(self) -> float | None:
        for u in reversed(self.public_updates):
            if u.status == "resolved":
                return u.at
        return None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def updated_at(self) -> float:
        return max([self.created_at, *(u.approved_at or u.at for u in self.updates)])

    def impact(self, states: dict[str, State]) -> str:
        """The override, else computed from the worst state of the affected components."""
        if self.impact_override:
            return self.impact_override
        worst = max(
            (states.get(c, State.OPERATIONAL) for c in self.components),
            key=lambda s: s.severity,
            default=State.OPERATIONAL,
        )
        return IMPACT_OF_STATE[worst]


def fold(events: Iterable[Event]) -> dict[str, Incident]:
    """Incidents by id from their events (oldest first)."""
    out: dict[str, Incident] = {}
    for e in events:
        d: dict[str, Any] = e.data
        if e.kind == "incident.opened":
            out[e.component] = Incident(
                id=e.component,
                title=str(d["title"]),
                severity=str(d.get("severity", "sev3")),
                components=list(d.get("components", [])),
                created_at=e.at,
                impact_override=d.get("impact"),
                draft=bool(d.get("draft", False)),
                cause=str(d.get("cause", "")),
            )
            continue
        inc = out.get(e.component)
        if inc is None:
            continue
        if e.kind == "incident.updated":
            inc.updates.append(
                Update(
                    id=str(d["update"]),
                    at=e.at,
                    status=str(d["status"]),
                    body=str(d.get("body", "")),
                    public=bool(d.get("public", True)),
                    author=str(d.get("author", "")),
                    approved_at=e.at if d.get("public", True) else None,
                )
            )
        elif e.kind == "incident.approved":
            for u in inc.updates:
                if u.id == d.get("update"):
                    u.public, u.approved_at, u.approved_by = True, e.at, str(d.get("by", ""))
        elif e.kind == "incident.discarded":
            inc.discarded = str(d.get("reason") or "discarded")
        elif e.kind == "incident.role_set":
            inc.roles[str(d["role"])] = str(d["person"])
    return out


class Incidents:
    """Open, update, approve and resolve incidents in drkit's state."""

    def __init__(self, state: StateStore, components: Sequence[str]) -> None:
        self.state = state
        self.components = list(components)

    def all(self) -> dict[str, Incident]:
        return fold(self.state.events(kind="incident."))

    def get(self, incident_id: str) -> Incident:
        found = self.all().get(incident_id)
        if found is None:
            raise IncidentNotFound(
                f"no incident {incident_id!r}", hint="drkit incident list shows the incidents"
            )
        return found

    def _check_components(self, components: Sequence[str]) -> None:
        for c in components:
            if c not in self.components:
                known = ", ".join(self.components) or "none in the plan"
                raise InputError(
                    f"unknown status component {c!r} (status_page.components: {known})",
                    hint="name a component of the plan's status_page",
                )

    def open(
        self,
        title: str,
        *,
        components: Sequence[str],
        severity: str = "sev3",
        body: str = "",
        impact: str | None = None,
        author: str = "",
        draft: bool = False,
        cause: str = "",
        at: float | None = None,
    ) -> Incident:
        """Open an incident with its first update (``investigating``); a ``draft`` is
        opened by a signal and stays off the public page until a person approves it."""
        _text("title", title, required=True)
        _text("body", body)
        if severity not in SEVERITIES:
            raise InputError(f"severity {severity!r}", hint=f"one of {', '.join(SEVERITIES)}")
        if impact is not None and impact not in IMPACTS:
            raise InputError(f"impact {impact!r}", hint=f"one of {', '.join(IMPACTS)}")
        if not components:
            raise InputError(
                "an incident needs at least one affected component",
                hint="--component NAME (a status_page component)",
            )
        self._check_components(components)
        when = at if at is not None else time.time()
        number = len(self.state.events(kind="incident.opened")) + 1
        inc_id = f"inc-{number}"
        self.state.record_event(
            "incident.opened",
            inc_id,
            title,
            {
                "title": title,
                "severity": severity,
                "components": list(components),
                "impact": impact,
                "draft": draft,
                "cause": cause,
                "author": author,
            },
            at=when,
        )
        self._append(
            inc_id, "investigating", body or title, public=not draft, author=author, at=when
        )
        return self.get(inc_id)

    def update(
        self, incident_id: str, status: str, body: str, *, author: str = "", draft: bool = False
    ) -> Update:
        """Append a typed update; refused on a resolved incident."""
        if status not in STATUSES:
            raise InputError(f"status {status!r}", hint=f"one of {', '.join(STATUSES)}")
        _text("body", body, required=True)
        inc = self.get(incident_id)
        if inc.discarded:
            raise InputError(
                f"incident {incident_id} was discarded ({inc.discarded})",
                hint="open a new incident (drkit incident open)",
            )
        if inc.resolved:
            raise InputError(
                f"incident {incident_id} is resolved; it takes no more updates",
                hint="open a new incident (drkit incident open)",
            )
        return self._append(incident_id, status, body, public=not draft, author=author)

    def resolve(self, incident_id: str, body: str = "", *, author: str = "") -> Update:
        return self.update(
            incident_id, "resolved", body or "This incident has been resolved.", author=author
        )

    def approve(self, incident_id: str, update_id: str | None = None, *, by: str = "") -> Update:
        """Make a drafted update public (the newest draft when ``update_id`` is None)."""
        inc = self.get(incident_id)
        if inc.discarded:
            raise InputError(
                f"incident {incident_id} was discarded ({inc.discarded})",
                hint="open a new incident (drkit incident open)",
            )
        drafts = [u for u in inc.updates if not u.public]
        chosen = [u for u in drafts if update_id in (None, u.id)]
        if not chosen:
            raise InputError(
                f"incident {incident_id} has no drafted update"
                + (f" {update_id!r}" if update_id else ""),
                hint="drkit incident show ID lists its updates",
            )
        target = chosen[-1]
        self.state.record_event(
            "incident.approved",
            incident_id,
            f"update {target.id} approved",
            {"update": target.id, "by": by},
        )
        return self.get(incident_id).updates[inc.updates.index(target)]

    def discard(self, incident_id: str, reason: str, *, by: str = "") -> None:
        """Discard a draft that never went public (refused once public: resolve it)."""
        _text("reason", reason, required=True)
        inc = self.get(incident_id)
        if inc.public:
            raise InputError(
                f"incident {incident_id} is public; it cannot be discarded",
                hint=f"resolve it: drkit incident resolve {incident_id}",
            )
        if inc.discarded:
            return
        self.state.record_event(
            "incident.discarded", incident_id, f"discarded: {reason}", {"reason": reason, "by": by}
        )

    def set_role(self, incident_id: str, role: str, person: str) -> None:
        if role not in ROLES:
            raise InputError(f"role {role!r}", hint=f"one of {', '.join(ROLES)}")
        _text("person", person, required=True)
        self.get(incident_id)
        self.state.record_event(
            "incident.role_set", incident_id, f"{role}: {person}", {"role": role, "person": person}
        )

    def _append(
        self,
        incident_id: str,
        status: str,
        body: str,
        *,
        public: bool,
        author: str,
        at: float | None = None,
    ) -> Update:
        n = len(self.state.events(kind="incident.updated", component=incident_id)) + 1
        update_id = f"u{n}"
        self.state.record_event(
            "incident.updated",
            incident_id,
            f"{status}: {body[:200]}",
            {
                "update": update_id,
                "status": status,
                "body": body,
                "public": public,
                "author": author,
            },
            at=at,
        )
        return next(u for u in self.get(incident_id).updates if u.id == update_id)


def _text(name: str, value: str, *, required: bool = False) -> None:
    if required and not value.strip():
        raise InputError(f"{name} is empty", hint=f"give the incident a {name}")
    if len(value) > MAX_TEXT:
        raise InputError(
            f"{name} is {len(value)} characters (at most {MAX_TEXT})", hint=f"shorten the {name}"
        )
