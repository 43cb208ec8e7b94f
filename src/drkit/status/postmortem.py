"""A postmortem drafted from an incident's timeline (the Google SRE template), in Markdown.

Everything drkit measured is filled in: when the first signal came, time to detect (first
signal -> incident opened), time to resolve (first signal -> resolved), failovers and
ejections counted from the gateway's events, the drills' measured RTO/RPO against their
targets. What only people know (root cause, what went well) is left as prompts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader

from drkit.errors import InputError
from drkit.status.incidents import Incident
from drkit.status.page import Snapshot, TimelineEntry, snapshot, timeline
from drkit.status.states import State

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
    acknowledge_s: float | None = None  # incident opened -> first public update
    unwell_s: float | None = None  # affected components not operational (the measured RTO)
    rto_target_s: float | None = None  # the tightest tier RTO of the routes involved
    providers: list[str] = field(default_factory=list)  # "target: vendor/region (model)"
    notified: dict[str, int] = field(default_factory=dict)  # group -> notices sent
    versions: list[str] = field(default_factory=list)  # model/dataset/eval events involved


def _unwell(snap: Snapshot, inc: Incident, lo: float, hi: float) -> float | None:
    """Seconds the incident's components spent neither operational nor in maintenance,
    between the first such change at or after ``lo`` and their return (or ``hi``)."""
    total = 0.0
    seen = False
    for name in inc.components:
        changes = [c for c in snap.changes if c.component == name]
        for i, c in enumerate(changes):
            end = changes[i + 1].at if i + 1 < len(changes) else hi
            if c.state in (State.OPERATIONAL, State.UNDER_MAINTENANCE) or end < lo:
                continue
            seen = True
            total = max(total, min(end, hi) - max(c.at, lo))
    return total if seen else None


def measure(
    inc: Incident,
    lines: list[TimelineEntry],
    state: StateStore,
    plan: Plan | None = None,
    *,
    now: float | None = None,
) -> Measured:
    signals = [t for t in lines if not t.kind.startswith("incident.") and t.at <= inc.created_at]
    first = signals[0].at if signals else None
    resolved = inc.resolved_at
    extra: dict[str, Any] = {}
    if plan is not None:
        extra = _plan_figures(plan, state, inc, lines, first, now=now)
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
        **extra,
    )


def _plan_figures(
    plan: Plan,
    state: StateStore,
    inc: Incident,
    lines: list[TimelineEntry],
    first: float | None,
    *,
    now: float | None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    covered = {n for c in plan.status_page.components if c.name in inc.components for n in c.covers}
    routes = [r for r in plan.serving.routes if r.name in covered]
    rtos = [plan.tiers[r.tier].rto for r in routes if r.tier in plan.tiers]
    rtos += [
        plan.tiers[c.tier].rto
        for _, c in plan.components()
        if c.name in covered and c.tier in plan.tiers
    ]
    ejected = {t.subject for t in lines if t.kind == "gateway.ejection"}
    providers = [
        f"{t.name}: {t.vendor or t.provider}/{t.region} ({t.model})"
        for r in routes
        for t in r.targets
        if t.name in ejected
    ]
    public = [u.approved_at or u.at for u in inc.public_updates]
    notified: dict[str, int] = {}
    for e in state.events(kind="notify.sent"):
        if e.data.get("incident") == inc.id:
            group = str(e.data.get("group", "?"))
            notified[group] = notified.get(group, 0) + 1
    snap = snapshot(plan, state, now=now)
    lo = first if first is not None else inc.created_at
    return {
        "acknowledge_s": (min(public) - inc.created_at) if public else None,
        "unwell_s": _unwell(snap, inc, lo - 1.0, inc.resolved_at or now),
        "rto_target_s": min(rtos) if rtos else None,
        "providers": providers,
        "notified": notified,
        "versions": sorted(
            {t.message for t in lines if t.kind.startswith(("model.", "eval.", "dataset."))}
        ),
    }


FORMATS = ("md", "html")


def draft(
    plan: Plan,
    state: StateStore,
    inc: Incident,
    *,
    now: float | None = None,
    format: str = "md",
) -> str:
    """The postmortem as Markdown (``md``) or a standalone HTML page (``html``)."""
    from datetime import UTC, datetime

    from drkit.status.actions import Actions

    if format not in FORMATS:
        raise InputError(f"format {format!r}", hint=f"one of {', '.join(FORMATS)}")
    lines = timeline(plan, state, inc, now=now)
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=format == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def fmt(t: float | None) -> str:
        return "-" if t is None else f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S} UTC"

    def dur(s: float | None) -> str:
        return "not measured" if s is None else f"{s:.1f} s"

    when = time.time() if now is None else now
    return env.get_template(f"postmortem.{format}").render(
        inc=inc,
        lines=lines,
        m=measure(inc, lines, state, plan, now=now),
        fmt=fmt,
        dur=dur,
        drafted=fmt(when),
        actions=Actions(state).all(inc.id),
        now=when,
    )


#: the largest postmortem text accepted for publishing
MAX_PUBLISHED = 200_000


def publish(state: StateStore, inc: Incident, text: str, *, by: str = "") -> None:
    """Put a person's reviewed postmortem (Markdown) on the public page: only for a
    public, resolved incident (a draft or an ongoing incident has none to publish)."""
    if not inc.public or not inc.resolved:
        raise InputError(
            f"incident {inc.id} is {'not public' if not inc.public else 'not resolved'}: "
            "only a resolved public incident gets a published postmortem",
            hint=f"resolve it first: drkit incident resolve {inc.id}",
        )
    if not text.strip() or len(text) > MAX_PUBLISHED:
        raise InputError(
            f"the postmortem is empty or over {MAX_PUBLISHED} characters",
            hint=f"draft one with drkit postmortem {inc.id} -o FILE, review it, publish the file",
        )
    state.record_event(
        "postmortem.published",
        inc.id,
        f"postmortem of {inc.id} published",
        {"text": text, "by": by, "sha256": hashlib.sha256(text.encode()).hexdigest()},
    )


def published(state: StateStore, incident_id: str) -> tuple[float, str] | None:
    """The newest published postmortem of the incident: (when, Markdown)."""
    found = state.events(kind="postmortem.published", component=incident_id)
    return (found[-1].at, str(found[-1].data.get("text", ""))) if found else None


def to_html(markdown: str) -> str:
    """Markdown rendered for the public page: CommonMark plus tables, raw HTML escaped."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown))
