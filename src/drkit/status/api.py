"""Machine feeds in the shape of Atlassian Statuspage's public API v2, so its clients and
aggregators read drkit's page: ``/api/v2/summary.json``, ``/api/v2/status.json``,
``/api/v2/components.json``, ``/api/v2/incidents.json``.

Statuspage knows no ``degraded_quality``: the ``status`` field says ``degraded_performance``
for it (what Statuspage clients understand) and ``drkit_status`` carries drkit's own state.
Drafted (unapproved) incidents and updates never appear here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from drkit.status.incidents import Incident
from drkit.status.page import Snapshot
from drkit.status.states import State

#: the page indicator from the roll-up
INDICATOR = {
    State.OPERATIONAL: ("none", "All Systems Operational"),
    State.UNDER_MAINTENANCE: ("maintenance", "Service Under Maintenance"),
    State.DEGRADED_PERFORMANCE: ("minor", "Minor Service Outage"),
    State.DEGRADED_QUALITY: ("minor", "Degraded Answer Quality"),
    State.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
    State.MAJOR_OUTAGE: ("critical", "Major System Outage"),
}


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _id(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def statuspage_status(state: State) -> str:
    return State.DEGRADED_PERFORMANCE.value if state == State.DEGRADED_QUALITY else state.value


def page(snap: Snapshot, url: str = "") -> dict[str, Any]:
    return {
        "id": _id("page", snap.title),
        "name": snap.title,
        "url": url,
        "time_zone": "Etc/UTC",
        "updated_at": iso(max((c.since for c in snap.components), default=snap.now)),
    }


def status(snap: Snapshot) -> dict[str, Any]:
    indicator, description = INDICATOR[snap.state]
    return {"indicator": indicator, "description": description}


def components(snap: Snapshot) -> list[dict[str, Any]]:
    page_id = _id("page", snap.title)
    return [
        {
            "id": _id("component", c.name),
            "name": c.name,
            "status": statuspage_status(c.state),
            "drkit_status": c.state.value,
            "created_at": iso(c.bars[0].start if c.bars else snap.now),
            "updated_at": iso(c.since),
            "position": i + 1,
            "description": c.description,
            "showcase": True,
            "start_date": None,
            "group_id": None,
            "page_id": page_id,
            "group": False,
            "only_show_if_degraded": False,
        }
        for i, c in enumerate(snap.components)
    ]


def incident(snap: Snapshot, inc: Incident, url: str = "") -> dict[str, Any]:
    page_id = _id("page", snap.title)
    comps = [c for c in components(snap) if c["name"] in inc.components]
    ups = inc.public_updates
    monitoring = next((u.at for u in ups if u.status == "monitoring"), None)
    return {
        "id": inc.id,
        "name": inc.title,
        "status": inc.public_status,
        "created_at": iso(inc.created_at),
        "updated_at": iso(max([inc.created_at, *((u.approved_at or u.at) for u in ups)])),
        "monitoring_at": iso(monitoring),
        "resolved_at": iso(inc.resolved_at),
        "impact": inc.impact(snap.states),
        "shortlink": f"{url}/incidents/{inc.id}",
        "started_at": iso(inc.created_at),
        "page_id": page_id,
        "incident_updates": [
            {
                "id": f"{inc.id}-{u.id}",
                "status": u.status,
                "body": u.body,
                "incident_id": inc.id,
                "created_at": iso(u.at),
                "updated_at": iso(u.approved_at or u.at),
                "display_at": iso(u.approved_at or u.at),
                "affected_components": [
                    {
                        "code": c["id"],
                        "name": c["name"],
                        "old_status": c["status"],
                        "new_status": c["status"],
                    }
                    for c in comps
                ],
                "deliver_notifications": True,
            }
            for u in reversed(ups)  # Statuspage lists the newest update first
        ],
        "components": comps,
    }


def summary(snap: Snapshot, url: str = "") -> dict[str, Any]:
    return {
        "page": page(snap, url),
        "components": components(snap),
        "incidents": [incident(snap, i, url) for i in snap.unresolved],
        "scheduled_maintenances": [],
        "status": status(snap),
    }


def incidents(snap: Snapshot, url: str = "") -> dict[str, Any]:
    return {
        "page": page(snap, url),
        "incidents": [incident(snap, i, url) for i in snap.public_incidents[:50]],
    }
