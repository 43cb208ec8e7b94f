"""Postmortem action items, event-sourced and tracked to closure.

``postmortem.action_added`` (subject: the incident id; data: action id, text, type,
owner, due) and ``postmortem.action_closed`` (action, note, by). Types follow the Google
SRE template: ``mitigate``, ``prevent``, ``process``. An action is overdue when it is
open past its due date (UTC midnight ending that day).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from drkit.errors import InputError
from drkit.status.incidents import Incidents

if TYPE_CHECKING:
    from drkit.state.store import StateStore

TYPES = ("mitigate", "prevent", "process")
MAX_TEXT = 500


@dataclass
class Action:
    incident: str
    id: str
    text: str
    type: str
    owner: str
    due: str  # YYYY-MM-DD
    added_at: float
    closed_at: float | None = None
    note: str = ""

    @property
    def status(self) -> str:
        return "closed" if self.closed_at is not None else "open"

    def overdue(self, now: float | None = None) -> bool:
        if self.closed_at is not None:
            return False
        end = datetime.combine(date.fromisoformat(self.due), datetime.min.time(), UTC)
        return (time.time() if now is None else now) >= (end + timedelta(days=1)).timestamp()


class Actions:
    def __init__(self, state: StateStore) -> None:
        self.state = state

    def all(self, incident: str | None = None) -> list[Action]:
        out: dict[tuple[str, str], Action] = {}
        for e in self.state.events(kind="postmortem.", component=incident):
            d = e.data
            key = (e.component, str(d.get("action", "")))
            if e.kind == "postmortem.action_added":
                out[key] = Action(
                    e.component,
                    key[1],
                    str(d.get("text", "")),
                    str(d.get("type", "")),
                    str(d.get("owner", "")),
                    str(d.get("due", "")),
                    e.at,
                )
            elif e.kind == "postmortem.action_closed" and key in out:
                out[key].closed_at = e.at
                out[key].note = str(d.get("note", ""))
        return list(out.values())

    def add(self, incident: str, text: str, *, type: str, owner: str, due: str) -> Action:
        Incidents(self.state, []).get(incident)  # IncidentNotFound for a typo
        if not text.strip() or len(text) > MAX_TEXT:
            raise InputError(
                f"action text is empty or over {MAX_TEXT} characters",
                hint="say what will be done",
            )
        if type not in TYPES:
            raise InputError(f"action type {type!r}", hint=f"one of {', '.join(TYPES)}")
        if not owner.strip():
            raise InputError("an action needs an owner", hint="--owner NAME")
        try:
            date.fromisoformat(due)
        except ValueError:
            raise InputError(f"due date {due!r}", hint="--due YYYY-MM-DD") from None
        n = len(self.state.events(kind="postmortem.action_added", component=incident)) + 1
        action_id = f"a{n}"
        self.state.record_event(
            "postmortem.action_added",
            incident,
            f"action {action_id} ({type}, {owner}, due {due}): {text[:200]}",
            {"action": action_id, "text": text, "type": type, "owner": owner, "due": due},
        )
        return next(a for a in self.all(incident) if a.id == action_id)

    def close(self, incident: str, action_id: str, note: str = "", *, by: str = "") -> Action:
        found = next((a for a in self.all(incident) if a.id == action_id), None)
        if found is None:
            raise InputError(
                f"incident {incident} has no action {action_id!r}",
                hint=f"drkit postmortem action list {incident}",
            )
        if found.closed_at is None:
            self.state.record_event(
                "postmortem.action_closed",
                incident,
                f"action {action_id} closed" + (f": {note[:200]}" if note else ""),
                {"action": action_id, "note": note, "by": by},
            )
        return next(a for a in self.all(incident) if a.id == action_id)
