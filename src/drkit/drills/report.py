"""The game-day scorecard as data, and its self-contained HTML report (inline SVG timeline).

The report has no external assets or scripts: one file to attach to a postmortem or
an audit. Each drill is one row of the timeline, scaled to its own duration, with its
phases as coloured segments and the fault / detected / recovered markers as ticks.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drkit.drills.journal import Journal, Measurement

PHASE_COLOURS = {
    "steady_state": "#8fb8de",
    "fault": "#e4572e",
    "recovery": "#f3a712",
    "verify": "#29bf12",
    "rollback": "#a5a5a5",
}
MARKER_COLOURS = {"fault_injected": "#b00020", "detected": "#6a0dad", "recovered": "#006400"}


@dataclass(frozen=True, slots=True)
class ScoreRow:
    scenario: str
    verdict: str
    rto: Measurement
    rpo: Measurement
    detection: Measurement
    metrics: dict[str, float]
    reasons: list[str]
    journal_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "verdict": self.verdict,
            "rto": self.rto.model_dump(),
            "rpo": self.rpo.model_dump(),
            "detection": self.detection.model_dump(),
            "metrics": self.metrics,
            "reasons": self.reasons,
            "journal": self.journal_id,
        }


def scorecard(journals: Sequence[Journal]) -> list[ScoreRow]:
    return [
        ScoreRow(
            j.scenario, j.verdict, j.rto, j.rpo, j.detection, dict(j.metrics), list(j.reasons), j.id
        )
        for j in journals
    ]


def fmt_seconds(seconds: float | None) -> str:
    """``-``, ``0s``, ``17ms``, ``2.4s``, ``3m20s``, ``5h``: short and exact enough."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{v}{u}" for v, u in parts if v) or "0s"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _timeline(journals: Sequence[Journal]) -> str:
    width, label_w, row_h = 900, 170, 34
    plot_w = width - label_w - 20
    height = row_h * len(journals) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="drill timeline">'
    ]
    for i, j in enumerate(journals):
        y = 10 + i * row_h
        span = max(j.ended_at - j.started_at, 1e-6)

        def x(t: float, j: Journal = j, span: float = span) -> float:
            return label_w + (t - j.started_at) / span * plot_w

        out.append(
            f'<text x="4" y="{y + 17}" font-size="13" font-family="sans-serif">'
            f"{_e(j.scenario)} ({fmt_seconds(span)})</text>"
        )
        for s in j.steps:
            x0, x1 = x(s.started_at), x(s.ended_at)
            colour = PHASE_COLOURS.get(s.phase, "#ccc") if s.status == "ok" else "#000"
            out.append(
                f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1.0):.1f}" height="18" '
                f'fill="{colour}"><title>{_e(s.phase)}: {_e(s.name)} ({_e(s.status)}, '
                f"{fmt_seconds(s.ended_at - s.started_at)}){_e(' ' + s.detail if s.detail else '')}"
                "</title></rect>"
            )
        seen: set[str] = set()
        for m in j.markers:
            if m.name in seen:
                continue
            seen.add(m.name)
            mx = x(m.at)
            colour = MARKER_COLOURS.get(m.name, "#333")
            out.append(
                f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y}" y2="{y + 26}" stroke="{colour}" '
                f'stroke-width="2"><title>{_e(m.name)} at +{fmt_seconds(m.at - j.started_at)}'
                "</title></line>"
            )
    ly = height - 14
    lx = label_w
    for phase, colour in PHASE_COLOURS.items():
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        out.append(
            f'<text x="{lx + 16}" y="{ly}" font-size="11" font-family="sans-serif">{phase}</text>'
        )
        lx += 100
    for name, colour in MARKER_COLOURS.items():
        out.append(
            f'<line x1="{lx}" x2="{lx}" y1="{ly - 11}" y2="{ly + 2}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        out.append(
            f'<text x="{lx + 5}" y="{ly}" font-size="11" font-family="sans-serif">{name}</text>'
        )
        lx += 105
    out.append("</svg>")
    return "\n".join(out)


def _cell(m: Measurement) -> str:
    cls = "" if m.met is None else ("ok" if m.met else "bad")
    return f'<td class="{cls}">{fmt_seconds(m.measured_s)} / {fmt_seconds(m.target_s)}</td>'


def _cost_table(tiers: Sequence[Mapping[str, Any]], currency: str) -> str:
    """Cost per tier beside its RTO/RPO targets (rows of ``drkit cost --json``'s tiers)."""
    if not tiers:
        return ""

    def money(x: Any) -> str:
        return "unknown" if x is None else f"{x:,.2f} {_e(currency)}"

    rows = "".join(
        f"<tr><td>{_e(t['tier'])}</td><td>{fmt_seconds(t['rto_s'])}</td>"
        f"<td>{fmt_seconds(t['rpo_s'])}</td><td>{money(t['monthly'])}</td>"
        f"<td>{money(t['outage_loss_year'])}</td>"
        f"<td>{money(t['outage_loss_bought_down_year'])}</td></tr>"
        for t in tiers
    )
    return (
        "<h2>Cost per tier</h2>\n<p>From <code>drkit cost</code>: measured sizes and runs "
        "where drkit has them, else the plan's estimates.</p>\n<table>\n<tr><th>tier</th>"
        "<th>RTO target</th><th>RPO target</th><th>DR per month</th>"
        "<th>expected outage loss a year</th><th>loss bought down a year</th></tr>\n"
        f"{rows}\n</table>\n"
    )


def render_html(
    plan_name: str,
    journals: Sequence[Journal],
    *,
    started_at: float,
    cost_tiers: Sequence[Mapping[str, Any]] = (),
    currency: str = "USD",
) -> str:
    rows = []
    for r, j in zip(scorecard(journals), journals, strict=True):
        metrics = ", ".join(f"{_e(k)}={v:g}" for k, v in sorted(r.metrics.items()))
        reasons = "<br>".join(_e(x) for x in r.reasons)
        verdict_cls = "ok" if r.verdict == "pass" else "bad"
        rows.append(
            f"<tr><td>{_e(r.scenario)}</td>"
            f'<td class="{verdict_cls}"><b>{_e(r.verdict.upper())}</b></td>'
            f"{_cell(r.rto)}{_cell(r.rpo)}{_cell(r.detection)}"
            f"<td>{metrics}</td><td>{reasons}</td><td><code>{_e(j.id)}</code></td></tr>"
        )
    passed = sum(1 for j in journals if j.verdict == "pass")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started_at))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>drkit game day: {_e(plan_name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
td.ok {{ background: #e3f6e1; }} td.bad {{ background: #fbe0dc; }}
code {{ font-size: 85%; }}
</style></head><body>
<h1>Game day: {_e(plan_name)}</h1>
<p>{when} &middot; {passed} of {len(journals)} drills passed &middot; measured / target</p>
<table>
<tr><th>scenario</th><th>verdict</th><th>RTO</th><th>RPO</th><th>detection</th>
<th>measured</th><th>reasons</th><th>journal</th></tr>
{"".join(rows)}
</table>
{_cost_table(cost_tiers, currency)}<h2>Timeline</h2>
{_timeline(journals)}
</body></html>
"""
