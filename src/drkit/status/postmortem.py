"""A postmortem drafted from an incident's timeline (the Google SRE template), in Markdown.

Everything drkit measured is filled in: when the first signal came, time to detect (first
signal -> incident opened), time to resolve (first signal -> resolved), failovers and
ejections counted from the gateway's events, the drills' measured RTO/RPO against their
targets. What only people know (root cause, what went well) is left as prompts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader

from drkit.status.incidents import Incident
from drkit.status.page import TimelineEntry, timeline

if TYPE_CHECKING:
    from drkit.plan.models import Plan
    from drkit.state.store import StateStore

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class Measured:
    first_signal_at: float | None
    detect_s: float | None
    resolve_s: float | None
    failovers: int
    ejections: int
    targets_ejected: list[str]
    drills: list[dict[str, Any]]


def measure(inc: Incident, lines: list[TimelineEntry], state: StateStore) -> Measured:
    signals = [t for t in lines if not t.kind.startswith("incident.") and t.at <= inc.created_at]
    first = signals[0].at if signals else None
    resolved = inc.resolved_at
    drills = []
    for d in state.drills():
        if any(t.kind == "drill.journal" and t.message.startswith(f"drill {d.id}") for t in lines):
            j = d.journal
            drills.append(
                {
                    "id": d.id,
                    "scenario": d.scenario,
                    "verdict": d.verdict,
                    "rto": j.get("rto", {}),
                    "rpo": j.get("rpo", {}),
                    "detection": j.get("detection", {}),
                }
            )
    return Measured(
        first_signal_at=first,
        detect_s=None if first is None else inc.created_at - first,
        resolve_s=None if resolved is None else resolved - (first or inc.created_at),
        failovers=sum(t.kind == "gateway.failover" for t in lines),
        ejections=sum(t.kind == "gateway.ejection" for t in lines),
        targets_ejected=sorted({t.subject for t in lines if t.kind == "gateway.ejection"}),
        drills=drills,
    )


def draft(plan: Plan, state: StateStore, inc: Incident, *, now: float | None = None) -> str:
    """The postmortem's Markdown text."""
    from datetime import UTC, datetime

    lines = timeline(plan, state, inc, now=now)
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def fmt(t: float | None) -> str:
        return "-" if t is None else f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S} UTC"

    def dur(s: float | None) -> str:
        return "not measured" if s is None else f"{s:.1f} s"

    return env.get_template("postmortem.md").render(
        inc=inc,
        lines=lines,
        m=measure(inc, lines, state),
        fmt=fmt,
        dur=dur,
        drafted=fmt(time.time() if now is None else now),
    )
