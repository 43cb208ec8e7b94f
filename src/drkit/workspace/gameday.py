"""A game day: the plan's drills one after another, their journals and the HTML report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.drills.engine import DrillInterrupted
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.live_options import LiveOptions
from drkit.drills.report import render_html, scorecard
from drkit.drills.runner import supported
from drkit.drills.scenarios import DrillOptions
from drkit.drills.scenarios import get as get_scenario
from drkit.errors import UsageError
from drkit.workspace.costing import gameday_cost_tiers

if TYPE_CHECKING:
    from drkit.workspace.workspace import Workspace


@dataclass
class GameDay:
    """The drills of one game day, their journals and the HTML report."""

    plan: str
    started_at: float
    journals: list[Journal]
    journal_paths: list[Path]
    report: Path

    @property
    def passed(self) -> bool:
        return all(j.verdict == "pass" for j in self.journals)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "started_at": self.started_at,
            "passed": self.passed,
            "report": str(self.report),
            "scorecard": [row.to_json() for row in scorecard(self.journals)],
            "journals": [str(p) for p in self.journal_paths],
        }


def run_gameday(
    ws: Workspace,
    *,
    seed: int = 0,
    scenarios: list[str] | None = None,
    report: Path | None = None,
    on_drill: Callable[[str], None] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    live: LiveOptions | None = None,
) -> GameDay:
    """Run the plan's drills (or ``scenarios``) one after another and write the report.

    Every drill runs even when an earlier one failed: a game day reports the whole
    posture. With ``live``, provider-outage is a live drill on that running gateway.
    The report goes to ``report`` or ``<state_dir>/gamedays/gameday-<time>.html``.
    """
    names = scenarios if scenarios else [s.name for s in supported(ws.plan)]
    if not names:
        raise UsageError(
            f"plan {ws.plan.name!r} supports no drill scenario",
            hint="`drkit drill list` says what each scenario needs",
        )
    for name in names:  # refuse bad input before the first drill runs
        why = get_scenario(name).why_not(ws.plan)
        if why is not None:
            raise UsageError(
                f"plan {ws.plan.name!r} cannot run {name!r}: {why}",
                hint="`drkit drill list` shows what this plan supports",
            )
    started = time.time()
    journals: list[Journal] = []
    paths: list[Path] = []
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    out = report or ws.state_dir / "gamedays" / f"gameday-{stamp}.html"

    history = _past_journals(ws, names)

    def write_report() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        page = render_html(
            ws.plan.name,
            journals,
            started_at=started,
            history=history,
            cost_tiers=gameday_cost_tiers(ws),
            currency=ws.plan.cost.currency,
        )
        tmp.write_text(page)
        os.replace(tmp, out)

    for name in names:
        if on_drill is not None:
            on_drill(name)
        try:
            gateway = live if name == "provider-outage" else None
            journal, path = ws.run_drill(
                name, DrillOptions(seed=seed, gateway=gateway), on_step=on_step
            )
        except DrillInterrupted as exc:
            journals.append(exc.journal)  # the report shows how far the game day got
            write_report()
            raise
        journals.append(journal)
        paths.append(path)
    write_report()
    result = GameDay(ws.plan.name, started, journals, paths, out)
    ws.state().record_event(
        "gameday.completed",
        ws.plan.name,
        f"{sum(j.verdict == 'pass' for j in journals)}/{len(journals)} drills passed",
        {"drills": [j.id for j in journals], "report": str(out), "passed": result.passed},
        at=started,
    )
    return result


def _past_journals(ws: Workspace, scenarios: Sequence[str]) -> list[Journal]:
    """Earlier journals of these scenarios from the state (the report's trends); one
    that no longer parses (an older journal version) is left out of the trend."""
    from pydantic import ValidationError

    out = []
    for record in ws.state().drills():
        if record.scenario in scenarios:
            try:
                out.append(Journal.model_validate(record.journal))
            except ValidationError:
                continue
    return out
