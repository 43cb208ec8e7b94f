"""The game-day scorecard as data, and its self-contained HTML report.

The report is a page an executive reads in a minute, with no external assets or scripts
(one file to attach to a postmortem or an audit): a verdict banner; per scenario a chart
of measured against target RTO and RPO (log scale: 6 ms against 5 min must both show),
the trend over past game days of the same plan, and its steps on demand (``<details>``,
no JavaScript); then the timeline — each drill one row scaled to its own duration, its
phases as coloured segments, the fault / detected / recovered markers as ticks — with
its legend in HTML, so it wraps instead of being cut off.
"""

from __future__ import annotations

import html
import math
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


#: readable names of the phases and markers (the legend and the tooltips)
PHASE_LABELS = {
    "steady_state": "steady state",
    "fault": "fault injected",
    "recovery": "recovery",
    "verify": "verify",
    "rollback": "rollback",
}
MARKER_LABELS = {"fault_injected": "fault", "detected": "detected", "recovered": "recovered"}
#: past runs of a scenario the trend shows
TREND_RUNS = 12


def _timeline(journals: Sequence[Journal]) -> str:
    width, label_w, row_h = 900, 190, 34
    plot_w = width - label_w - 20
    height = row_h * len(journals) + 12
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="drill timeline" '
        'class="timeline">'
    ]
    for i, j in enumerate(journals):
        y = 6 + i * row_h
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
                f'fill="{colour}"><title>{_e(PHASE_LABELS.get(s.phase, s.phase))}: '
                f"{_e(s.name)} ({_e(s.status)}, {fmt_seconds(s.ended_at - s.started_at)})"
                f"{_e(' ' + s.detail if s.detail else '')}</title></rect>"
            )
        seen: set[str] = set()
        for m in j.markers:
            if m.name in seen or m.name not in MARKER_COLOURS:
                continue
            seen.add(m.name)
            mx = x(m.at)
            out.append(
                f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y}" y2="{y + 26}" '
                f'stroke="{MARKER_COLOURS[m.name]}" stroke-width="2">'
                f"<title>{_e(MARKER_LABELS[m.name])} at +{fmt_seconds(m.at - j.started_at)}"
                "</title></line>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _legend() -> str:
    items = [
        f'<span class="key"><i style="background:{c}"></i>{_e(PHASE_LABELS[p])}</span>'
        for p, c in PHASE_COLOURS.items()
    ]
    items += [
        f'<span class="key"><i class="tick" style="background:{c}"></i>{_e(MARKER_LABELS[m])}'
        "</span>"
        for m, c in MARKER_COLOURS.items()
    ]
    items.append('<span class="key"><i style="background:#000"></i>step failed</span>')
    return f'<div class="legend" data-legend>{"".join(items)}</div>'


def _log_x(seconds: float, lo: float, hi: float, x0: float, w: float) -> float:
    s = min(max(seconds, lo), hi)
    return x0 + (math.log10(s) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * w


def _measure_chart(name: str, m: Measurement) -> str:
    """One horizontal bar: the measured value on a log scale, the target as a line."""
    width, x0, w = 420, 60, 250
    values = [v for v in (m.measured_s, m.target_s) if v is not None and v > 0]
    lo = min([0.001, *values])
    hi = max([1.0, *values]) * 2
    state = "none" if m.met is None else ("met" if m.met else "missed")
    fill = {"met": "#2e9e5b", "missed": "#d63031", "none": "#8a94a0"}[state]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} 34" '
        f'role="img" aria-label="{name}: measured against target" class="measure" '
        f'data-measure="{name.lower()}" data-met="{state}">',
        f'<text x="0" y="21" font-size="13" font-family="sans-serif" font-weight="bold">{name}'
        "</text>",
        f'<rect x="{x0}" y="8" width="{w}" height="18" fill="#eef0f2"/>',
    ]
    if m.measured_s is not None:
        mx = _log_x(max(m.measured_s, lo), lo, hi, x0, w)
        out.append(
            f'<rect x="{x0}" y="8" width="{max(mx - x0, 2.0):.1f}" height="18" fill="{fill}">'
            f"<title>measured {fmt_seconds(m.measured_s)}</title></rect>"
        )
    if m.target_s is not None:
        tx = _log_x(m.target_s, lo, hi, x0, w)
        out.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="3" y2="31" stroke="#1f2933" '
            f'stroke-width="2" stroke-dasharray="3 2"><title>target {fmt_seconds(m.target_s)}'
            "</title></line>"
        )
    label = (
        "not measured"
        if m.measured_s is None
        else f"{fmt_seconds(m.measured_s)} of {fmt_seconds(m.target_s)}"
        if m.target_s is not None
        else f"{fmt_seconds(m.measured_s)} (no target)"
    )
    out.append(
        f'<text x="{x0 + w + 8}" y="21" font-size="12" font-family="sans-serif">{_e(label)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _trend(scenario: str, runs: Sequence[Journal]) -> str:
    """Measured RTO and RPO of the scenario's past runs (oldest left), log scale, with the
    newest target as a dashed line; a dot per run coloured by its verdict."""
    if len(runs) < 2:
        return '<p class="meta" data-trend="none">First run: no trend yet.</p>'
    width, height, x0, y0, w, h = 420, 96, 40, 8, 360, 70
    values = [
        v
        for j in runs
        for v in (j.rto.measured_s, j.rpo.measured_s, j.rto.target_s, j.rpo.target_s)
        if v is not None and v > 0
    ]
    lo, hi = min([0.001, *values]), max([1.0, *values]) * 2

    def y(v: float) -> float:
        return y0 + h - (_log_x(max(v, lo), lo, hi, 0, h))

    def x(i: int) -> float:
        return x0 + i / (len(runs) - 1) * w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(scenario)}: RTO and RPO over past game days" '
        f'class="trend" data-trend="{len(runs)}">',
        f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="#f6f7f9"/>',
        f'<text x="0" y="{y0 + 10}" font-size="10" font-family="sans-serif">'
        f"{fmt_seconds(hi)}</text>",
        f'<text x="0" y="{y0 + h}" font-size="10" font-family="sans-serif">'
        f"{fmt_seconds(lo)}</text>",
    ]
    for measure, colour in (("rto", "#3478c6"), ("rpo", "#9b59b6")):
        target = getattr(runs[-1], measure).target_s
        if target:
            out.append(
                f'<line x1="{x0}" x2="{x0 + w}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                f'stroke="{colour}" stroke-dasharray="4 3"><title>{measure.upper()} target '
                f"{fmt_seconds(target)}</title></line>"
            )
        pts = [
            (x(i), y(v))
            for i, j in enumerate(runs)
            if (v := getattr(j, measure).measured_s) is not None
        ]
        if len(pts) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for i, j in enumerate(runs):
            v = getattr(j, measure).measured_s
            if v is None:
                continue
            dot = "#2e9e5b" if j.verdict == "pass" else "#d63031"
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(j.started_at))
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{dot}" '
                f'stroke="{colour}"><title>{when} UTC: {measure.upper()} {fmt_seconds(v)} '
                f"({_e(j.verdict)})</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _steps(j: Journal) -> str:
    rows = "".join(
        f'<tr class="{"" if s.status == "ok" else "bad"}">'
        f"<td>{_e(PHASE_LABELS.get(s.phase, s.phase))}</td><td>{_e(s.name)}</td>"
        f"<td>{_e(s.status)}</td>"
        f"<td>+{fmt_seconds(s.started_at - j.started_at)}</td>"
        f"<td>{fmt_seconds(s.ended_at - s.started_at)}</td><td>{_e(s.detail)}</td></tr>"
        for s in j.steps
    )
    return (
        f'<details data-steps="{_e(j.id)}"><summary>{len(j.steps)} steps, journal '
        f"<code>{_e(j.id)}</code></summary><table><tr><th>phase</th><th>step</th>"
        f"<th>status</th><th>at</th><th>took</th><th>detail</th></tr>{rows}</table></details>"
    )


def _cost_card(tiers: Sequence[Mapping[str, Any]], currency: str) -> str:
    table = _cost_table(tiers, currency)
    return f'<section class="card" data-cost>{table}</section>' if table else ""


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


#: the game-day report's style sheet
_CSS = """body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  margin: 0; color: #1f2933; background: #f6f7f9; }
main { max-width: 980px; margin: 0 auto; padding: 24px 16px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 13px; margin: 0; color: #6b7785; font-weight: normal; }
.banner { border-radius: 6px; padding: 14px 18px; color: #fff; font-weight: 600;
  font-size: 18px; margin: 16px 0; }
.banner.ok { background: #2e9e5b; } .banner.bad { background: #d63031; }
.card { background: #fff; border: 1px solid #e3e6ea; border-radius: 6px; padding: 16px 20px;
  margin: 0 0 16px; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; } .charts > div { flex: 1 1 380px; }
.badge { font-size: 12px; padding: 2px 8px; border-radius: 10px; color: #fff;
  vertical-align: middle; }
.badge.ok { background: #2e9e5b; } .badge.bad { background: #d63031; }
.meta { color: #6b7785; font-size: 13px; margin: 4px 0; }
.reasons { color: #d63031; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { border-top: 1px solid #eef0f2; padding: 4px 8px; text-align: left;
  vertical-align: top; }
tr.bad td { background: #fbe0dc; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; margin: 8px 0; }
.key i { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: -1px; }
.key i.tick { width: 3px; }
summary { cursor: pointer; color: #3478c6; font-size: 13px; }
code { font-size: 85%; }
"""


def _card(r: ScoreRow, j: Journal, history: Sequence[Journal]) -> str:
    """One drill's card: verdict, RTO/RPO charts, its trend, reasons, figures, steps."""
    metrics = "".join(
        f"<li>{_e(k.replace('_', ' '))}: <b>{v:g}</b></li>" for k, v in sorted(r.metrics.items())
    )
    reasons = "".join(f"<li>{_e(x)}</li>" for x in r.reasons)
    past = sorted(
        [h for h in history if h.scenario == j.scenario and h.id != j.id] + [j],
        key=lambda h: h.started_at,
    )[-TREND_RUNS:]
    ok = r.verdict == "pass"
    return (
        f'<section class="card" data-scenario="{_e(r.scenario)}">'
        f'<h2>{_e(r.scenario)} <span class="badge {"ok" if ok else "bad"}">'
        f"{_e(r.verdict.upper())}</span></h2>"
        f'<p class="meta">{_e(j.description)}</p>'
        f'<div class="charts"><div>{_measure_chart("RTO", r.rto)}'
        f"{_measure_chart('RPO', r.rpo)}"
        f'<p class="meta">detection {fmt_seconds(r.detection.measured_s)} · bar: measured '
        "(green met, red missed), dashed line: target, log scale</p></div>"
        f"<div><h3>Past game days</h3>{_trend(r.scenario, past)}"
        '<p class="meta"><span style="color:#3478c6">RTO</span> · '
        '<span style="color:#9b59b6">RPO</span> · dots: pass/fail</p></div></div>'
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + (
            f"<details><summary>measured figures</summary><ul>{metrics}</ul></details>"
            if metrics
            else ""
        )
        + _steps(j)
        + "</section>"
    )


def render_html(
    plan_name: str,
    journals: Sequence[Journal],
    *,
    started_at: float,
    history: Sequence[Journal] = (),
    cost_tiers: Sequence[Mapping[str, Any]] = (),
    currency: str = "USD",
) -> str:
    """The report of one game day; ``history`` holds earlier runs (any order) for the
    trends: the newest :data:`TREND_RUNS` of each scenario, this game day's included;
    ``cost_tiers`` are rows of ``drkit cost --json``'s tiers (the cost card)."""
    cards = [_card(r, j, history) for r, j in zip(scorecard(journals), journals, strict=True)]
    passed = sum(1 for j in journals if j.verdict == "pass")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started_at))
    banner = "ok" if passed == len(journals) and journals else "bad"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>drkit game day: {_e(plan_name)}</title>
<style>
{_CSS}</style></head><body><main>
<h1>Game day: {_e(plan_name)}</h1>
<p class="meta">{when} · RTO: time to recover, RPO: data-loss window, each measured against
the plan's target</p>
<div class="banner {banner}" data-verdict="{banner}">{passed} of {len(journals)} drills
passed</div>
{"".join(cards)}
{_cost_card(cost_tiers, currency)}
<section class="card"><h2>Timeline</h2>
<p class="meta">each drill scaled to its own duration; hover a segment for its step</p>
{_timeline(journals)}
{_legend()}
</section>
</main></body></html>
"""
