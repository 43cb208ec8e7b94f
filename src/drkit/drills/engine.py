"""The drill engine: steady state -> fault -> recovery -> verify -> rollback (always).

A drill is data (:class:`Drill`): named steps per phase, each a callable taking the
:class:`DrillContext`. A step fails by raising (any exception: its message goes to the
journal) or by returning ``False``. The engine times every step, keeps the timeline
markers steps set through the context, computes detection time, RTO and RPO against the
targets, and always runs the rollback steps — after a failed step and after Ctrl-C too.

Measurements:

- *detection*: ``fault_injected`` -> ``detected`` marker;
- *RTO*: ``fault_injected`` -> ``recovered`` marker (set by a recovery or verify step
  when service is back, as the scenario defines it);
- *RPO*: the data-loss window a step reports with :meth:`DrillContext.record_rpo`
  (seconds of writes lost; scenarios with nothing to lose report 0).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drkit.drills.journal import Journal, Marker, Measurement, Phase, StepRecord, Verdict

StepFn = Callable[["DrillContext"], bool | None]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    run: StepFn


@dataclass(frozen=True, slots=True)
class Drill:
    """A scenario bound to a concrete stack: its steps and its targets."""

    scenario: str
    description: str
    steady_state: tuple[Step, ...] = ()
    fault: tuple[Step, ...] = ()
    recovery: tuple[Step, ...] = ()
    verify: tuple[Step, ...] = ()
    rollback: tuple[Step, ...] = ()
    rto_target_s: float | None = None
    rpo_target_s: float | None = None
    detection_target_s: float | None = None
    #: the journal's id when it must be known before the run (a live drill's fault
    #: carries it in the gateway); default: scenario, start time and a random suffix
    id: str | None = None


def new_drill_id(scenario: str, at: float | None = None) -> str:
    """``<scenario>-<UTC time>-<6 hex>``: the id of one run of a drill."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if at is None else at))
    return f"{scenario}-{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass
class DrillContext:
    """What steps use to share state, draw seeded randomness and mark the timeline."""

    seed: int
    rng: random.Random
    clock: Callable[[], float] = time.time
    values: dict[str, object] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    rpo_s: float | None = None
    rpo_detail: str = ""
    #: facts the running step reports (snapshot ids, files restored...) -> its journal data
    step_data: dict[str, object] = field(default_factory=dict)

    def mark(self, name: str, detail: str = "", at: float | None = None) -> None:
        """Put a named instant on the timeline (the first of each name counts)."""
        self.markers.append(Marker(name=name, at=self.clock() if at is None else at, detail=detail))

    def marker(self, name: str) -> float | None:
        return next((m.at for m in self.markers if m.name == name), None)

    def record_rpo(self, seconds: float, detail: str = "") -> None:
        self.rpo_s = seconds
        self.rpo_detail = detail

    def metric(self, name: str, value: float) -> None:
        self.metrics[name] = value

    def note(self, key: str, value: object) -> None:
        """Attach a JSON-able fact to the running step's journal record (``data``)."""
        self.step_data[key] = value


class DrillInterrupted(Exception):
    """Raised after rollback when the run was interrupted (Ctrl-C)."""

    def __init__(self, journal: Journal) -> None:
        super().__init__("drill interrupted; rollback ran")
        self.journal = journal


_PHASES: tuple[Phase, ...] = ("steady_state", "fault", "recovery", "verify")


def run_drill(
    drill: Drill,
    *,
    seed: int = 0,
    plan: str | None = None,
    clock: Callable[[], float] = time.time,
    on_step: Callable[[StepRecord], None] | None = None,
) -> Journal:
    """Run ``drill`` and return its journal. Rollback always runs.

    A KeyboardInterrupt is turned into :class:`DrillInterrupted` carrying the journal
    (verdict ``interrupted``) once rollback has run.
    """
    run = _Run(drill, seed, clock, on_step)
    started = clock()
    run.phases()
    detection, rto, rpo = run.measurements()
    verdict = run.judge(detection, rto, rpo)
    ctx = run.ctx
    journal = Journal(
        id=drill.id or new_drill_id(drill.scenario, started),
        scenario=drill.scenario,
        description=drill.description,
        plan=plan,
        seed=seed,
        started_at=started,
        ended_at=clock(),
        steps=run.steps,
        markers=ctx.markers,
        detection=detection,
        rto=rto,
        rpo=rpo,
        metrics=ctx.metrics,
        verdict=verdict,
        reasons=run.reasons,
    )
    if run.interrupted:
        raise DrillInterrupted(journal)
    return journal


class _Run:
    """One run of a drill: its context, the steps' records, the reasons and the verdict
    so far (``None`` while nothing decided it)."""

    def __init__(
        self,
        drill: Drill,
        seed: int,
        clock: Callable[[], float],
        on_step: Callable[[StepRecord], None] | None,
    ) -> None:
        self.drill = drill
        self.clock = clock
        self.on_step = on_step
        self.ctx = DrillContext(seed=seed, rng=random.Random(seed), clock=clock)
        self.steps: list[StepRecord] = []
        self.reasons: list[str] = []
        self.verdict: Verdict | None = None
        self.interrupted = False

    def step(self, phase: Phase, step: Step) -> bool:
        """Run one step, journal it; whether it went well."""
        ctx, clock = self.ctx, self.clock
        t0 = clock()
        status, detail = "ok", ""
        ctx.step_data = {}
        try:
            if step.run(ctx) is False:
                status, detail = "failed", "check returned false"
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a step failing is data for the journal, not a crash
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
            hint = getattr(exc, "hint", None)
            if isinstance(hint, str) and hint:
                detail += f" (try: {hint})"
        record = StepRecord(
            phase=phase,
            name=step.name,
            status=status,
            started_at=t0,
            ended_at=clock(),
            detail=detail,
            data=dict(ctx.step_data),
        )
        self.steps.append(record)
        if self.on_step is not None:
            self.on_step(record)
        if status != "ok":
            self.reasons.append(f"{phase} step '{step.name}' failed: {detail}")
        return status == "ok"

    def phases(self) -> None:
        """Steady state, fault, recovery, verify up to the first failed step; then the
        rollback steps, always."""
        try:
            for phase in _PHASES:
                if phase == "fault":
                    self.ctx.mark("fault_injected")
                ok = all(self.step(phase, step) for step in getattr(self.drill, phase))
                if not ok:
                    self.verdict = "aborted" if phase == "steady_state" else "fail"
                    break
        except KeyboardInterrupt:
            self.interrupted = True
            self.verdict = "interrupted"
            self.reasons.append("interrupted by the operator")
        finally:
            for step in self.drill.rollback:
                try:
                    self.step("rollback", step)
                except KeyboardInterrupt:
                    self.interrupted = True
                    self.verdict = "interrupted"

    def measurements(self) -> tuple[Measurement, Measurement, Measurement]:
        """Detection time, RTO and RPO against the drill's targets."""
        ctx, drill = self.ctx, self.drill
        fault_at = ctx.marker("fault_injected") if self.verdict != "aborted" else None
        detection = _measure(
            fault_at, ctx.marker("detected"), drill.detection_target_s, "detection"
        )
        rto = _measure(fault_at, ctx.marker("recovered"), drill.rto_target_s, "recovery")
        rpo = Measurement(
            measured_s=ctx.rpo_s,
            target_s=drill.rpo_target_s,
            met=_met(ctx.rpo_s, drill.rpo_target_s),
            detail=ctx.rpo_detail,
        )
        return detection, rto, rpo

    def judge(self, detection: Measurement, rto: Measurement, rpo: Measurement) -> Verdict:
        """The verdict: a run whose steps all went well passes when it met its targets;
        a failed rollback step fails a run that would pass."""
        verdict = self.verdict
        if verdict is None:
            verdict = "pass"
            for label, m in (("RTO", rto), ("RPO", rpo), ("detection time", detection)):
                if m.met is False:
                    verdict = "fail"
                    self.reasons.append(
                        f"{label} {m.measured_s:.3f}s exceeds the target {m.target_s:.3f}s"
                    )
            if rto.measured_s is None and self.drill.rto_target_s is not None:
                verdict = "fail"
                self.reasons.append("service was never marked recovered")
        if any(s.status != "ok" for s in self.steps if s.phase == "rollback") and verdict == "pass":
            verdict = "fail"
        self.verdict = verdict
        return verdict


def _met(measured: float | None, target: float | None) -> bool | None:
    if measured is None or target is None:
        return None
    return measured <= target


def _measure(
    start: float | None, end: float | None, target: float | None, what: str
) -> Measurement:
    if start is None or end is None:
        return Measurement(target_s=target, detail=f"no {what} observed")
    measured = max(0.0, end - start)
    return Measurement(measured_s=measured, target_s=target, met=_met(measured, target))


def write_journal(journal: Journal, directory: Path) -> Path:
    """Write ``<id>.json`` atomically (temp file + rename) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{journal.id}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(journal.model_dump(mode="json"), indent=2) + "\n")
    os.replace(tmp, path)
    return path
