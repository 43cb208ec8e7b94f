"""The drill journal: what a drill did, when, and what it measured against the targets.

A journal is JSON validated by :class:`Journal` (its JSON schema is published as
``docs/drill-journal.schema.json`` and checked by the tests). Times are Unix seconds;
measured durations are seconds; ``null`` means "not measured" (a drill that never
recovered has no RTO, it has a failing verdict).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["steady_state", "fault", "recovery", "verify", "rollback"]
StepStatus = Literal["ok", "failed", "error", "skipped"]
Verdict = Literal["pass", "fail", "aborted", "interrupted", "error"]

JOURNAL_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepRecord(_Model):
    """One step of one phase."""

    phase: Phase
    name: str
    status: StepStatus
    started_at: float
    ended_at: float
    detail: str = ""
    data: dict[str, object] = Field(default_factory=dict)


class Measurement(_Model):
    """A measured value beside its target; ``met`` is None when either is missing."""

    measured_s: float | None = None
    target_s: float | None = None
    met: bool | None = None
    detail: str = ""


class Marker(_Model):
    """A named instant on the drill's timeline (fault injected, detected, recovered)."""

    name: str
    at: float
    detail: str = ""


class Journal(_Model):
    version: int = JOURNAL_VERSION
    id: str
    scenario: str
    description: str
    plan: str | None = None
    seed: int
    started_at: float
    ended_at: float
    steps: list[StepRecord]
    markers: list[Marker]
    detection: Measurement
    rto: Measurement
    rpo: Measurement
    #: Extra figures a scenario measures (client-visible errors, records lost...).
    metrics: dict[str, float] = Field(default_factory=dict)
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
