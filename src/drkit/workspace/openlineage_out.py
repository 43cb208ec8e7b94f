"""The plan's OpenLineage emitter, wired to drkit's state (docs/models.md#openlineage).

:func:`openlineage_out` is the one place a command gets its
:class:`~drkit.lineage.openlineage.Emitter`: the plan's ``lineage.openlineage``
destination (none: an emitter that does nothing), failures recorded as
``lineage.emit_failed`` events in the plan's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.lineage.openlineage import EMIT_FAILED, Destination, Emitter, destination
from drkit.state.store import StateStore, state_location

if TYPE_CHECKING:
    from drkit.plan.models import Plan


def openlineage_out(
    plan: Plan | None,
    state: StateStore | Path | str | None = None,
    *,
    dest: Destination | None = None,
) -> Emitter:
    """An emitter to ``plan``'s destination (or ``dest``); a failure is recorded in
    ``state`` (an open store, or where one is; default: the plan's state)."""
    dest = dest if dest is not None else destination(plan)
    if dest is None:
        return Emitter(None)
    where = state if state is not None else state_location(plan)

    def record(message: str, data: dict[str, Any]) -> None:
        subject = str(data.get("job") or "openlineage")
        if isinstance(where, StateStore):
            where.record_event(EMIT_FAILED, subject, message, data)
            return
        store = StateStore(where)
        try:
            store.record_event(EMIT_FAILED, subject, message, data)
        finally:
            store.close()

    return Emitter(dest, on_failure=record)
