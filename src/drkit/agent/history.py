"""Each job's runs, kept as ``agent.run`` events in drkit's state.

The state is what makes catch-up right: a job is due when its schedule's next run after
its *last recorded run* has come, so an agent that was down for ten slots runs the job
once on restart, not ten times. The events are the state store's public API (kind
``agent.run``, the job id as the subject), readable by any sibling.

Under a leader lease (:mod:`drkit.agent.leader`) every run is first *claimed*
(``agent.claim``: job, start, holder, token) and both events are written with the term's
fence, so a deposed leader can neither start nor record a job any more.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from drkit.state.store import Fence, StateStore

EVENT_KIND = "agent.run"
CLAIM_KIND = "agent.claim"

Status = Literal["ok", "failed", "interrupted"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a job (its retries included)."""

    job: str
    started: float
    ended: float
    status: Status
    attempts: int = 1
    summary: str = ""
    error: str | None = None
    transient: bool = False
    #: what the run stored or moved (a backup's new stored bytes, a copy's bytes sent)
    bytes: int | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended - self.started)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "started": self.started,
            "ended": self.ended,
            "duration_s": round(self.duration_s, 3),
            "status": self.status,
            "attempts": self.attempts,
            "summary": self.summary,
            "error": self.error,
            "transient": self.transient,
            "bytes": self.bytes,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunRecord:
        return cls(
            str(doc["job"]),
            float(doc["started"]),
            float(doc["ended"]),
            doc["status"],
            int(doc.get("attempts", 1)),
            str(doc.get("summary", "")),
            doc.get("error"),
            bool(doc.get("transient", False)),
            None if doc.get("bytes") is None else int(doc["bytes"]),
        )


class History:
    """The last run and last success of each job: read from the state once, then kept
    in memory as runs are recorded (every record also commits to the state)."""

    def __init__(
        self, state: StateStore, *, fence: Fence | None = None, holder: str | None = None
    ) -> None:
        self.state = state
        self.fence = fence
        self.holder = holder
        self._lock = threading.Lock()
        self._last: dict[str, RunRecord] = {}
        self._last_ok: dict[str, RunRecord] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._bytes: dict[str, int] = {}
        for event in state.events(kind=EVENT_KIND):
            self._remember(RunRecord.from_json(event.data))

    def _remember(self, run: RunRecord) -> None:
        self._last[run.job] = run
        if run.status == "ok":
            self._last_ok[run.job] = run
        key = (run.job, run.status)
        self._counts[key] = self._counts.get(key, 0) + 1
        if run.bytes is not None:
            self._bytes[run.job] = self._bytes.get(run.job, 0) + run.bytes

    def claim(self, job: str, started: float) -> None:
        """Say (under the fence) that this agent starts ``job`` now; without a fence,
        nothing to say. :class:`~drkit.state.store.Fenced` when the term is over."""
        if self.fence is None:
            return
        self.state.record_event(
            CLAIM_KIND,
            job,
            f"started by {self.holder}",
            {"job": job, "started": started, "holder": self.holder, "token": self.fence.token},
            at=started,
            fence=self.fence,
        )

    def record(self, run: RunRecord) -> None:
        message = run.summary if run.status == "ok" else (run.error or run.status)
        self.state.record_event(
            EVENT_KIND, run.job, message, run.to_json(), at=run.ended, fence=self.fence
        )
        with self._lock:
            self._remember(run)

    def last(self, job: str) -> RunRecord | None:
        with self._lock:
            return self._last.get(job)

    def last_success(self, job: str) -> RunRecord | None:
        with self._lock:
            return self._last_ok.get(job)

    def count(self, job: str, status: str) -> int:
        with self._lock:
            return self._counts.get((job, status), 0)

    def bytes_total(self, job: str) -> int:
        """The bytes of every recorded run of ``job``."""
        with self._lock:
            return self._bytes.get(job, 0)

    def runs(self, job: str | None = None) -> list[RunRecord]:
        """Every recorded run (oldest first), from the state."""
        return [
            RunRecord.from_json(e.data) for e in self.state.events(kind=EVENT_KIND, component=job)
        ]
