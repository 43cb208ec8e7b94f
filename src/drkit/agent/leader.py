"""Which of several agents sharing one state runs the jobs: a leader lease in the state.

Every agent tries to take the lease :data:`LEASE` (a row: holder, expiry, fencing token;
:meth:`~drkit.state.store.StateStore.acquire_lease`); the one that has it is the leader
and schedules, the others are followers that only serve their endpoints and try again
every :attr:`Leadership.poll_every` seconds. The leader renews every third of the TTL.

- *Leader only while sure*: an agent counts itself leader until ``ttl`` minus a margin
  after the moment it *sent* its last successful renewal (its own monotonic clock), which
  is before the expiry the database recorded — so it stops starting jobs before any other
  agent can take over, whatever the wall clocks say. A state that cannot be reached is a
  renewal that failed.
- *Fencing*: every write of a term (a job's claim, its result) carries the term's token;
  the state rejects it once another agent took over (:class:`~drkit.state.store.Fenced`).
- *A dead leader's job*: its claim (``agent.claim``) has no result; the next leader
  records it ``interrupted`` (:func:`reconcile`) and runs the job again at once, so a job
  is neither lost nor recorded twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from drkit.agent.history import CLAIM_KIND, EVENT_KIND, RunRecord
from drkit.errors import DrkitError
from drkit.state.store import Fence, StateStore

log = logging.getLogger("drkit.agent")

#: the name of the agents' lease row
LEASE = "drkit-agent"
#: the event a new leader writes (fenced with its token)
LEADER_KIND = "agent.leader"


def holder_id() -> str:
    """This agent, as the lease names it: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Leadership:
    """One agent's view of the lease; :meth:`tick` renews or tries to take it."""

    state: StateStore
    ttl: float
    holder: str = field(default_factory=holder_id)
    token: int | None = None
    valid_until: float = 0.0
    #: the reason the last attempt did not lead (another holder, an unreachable state)
    note: str = ""

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def poll_every(self) -> float:
        return min(1.0, self.ttl / 3)

    @property
    def margin(self) -> float:
        return min(1.0, self.ttl / 10)

    @property
    def is_leader(self) -> bool:
        return self.token is not None and time.monotonic() < self.valid_until

    @property
    def fence(self) -> Fence:
        if self.token is None:
            raise RuntimeError("not the leader")
        return Fence(LEASE, self.token)

    def tick(self) -> bool:
        """Renew (or take) the lease; whether this agent leads now."""
        sent = time.monotonic()
        try:
            lease = self.state.acquire_lease(LEASE, self.holder, self.ttl)
        except DrkitError as exc:  # the state is unreachable: leader only until valid_until
            self.note = f"cannot renew the lease: {exc}"
            log.warning("agent %s: %s", self.holder, self.note)
            if not self.is_leader:
                self.token = None
            return self.is_leader
        if lease is None:
            held, _ = self.state.lease(LEASE)
            self.note = f"{held.holder} leads (token {held.token})" if held else "lease taken"
            self.token = None
            return False
        if lease.token != self.token:
            log.info("agent %s leads (token %d)", self.holder, lease.token)
        self.token = lease.token
        self.valid_until = sent + self.ttl - self.margin
        self.note = ""
        return True

    def release(self) -> None:
        """Give the lease up (a clean stop): a follower takes over without waiting."""
        if self.token is None:
            return
        try:
            self.state.release_lease(LEASE, self.holder, self.token)
        except DrkitError as exc:
            log.warning("agent %s: could not release the lease: %s", self.holder, exc)
        self.token = None


def reconcile(state: StateStore, fence: Fence, holder: str) -> list[RunRecord]:
    """At the start of a term: every job whose newest claim (by an earlier term) has no
    recorded result is recorded ``interrupted`` under this term's fence (it is then due
    at once); the records written."""
    runs = {(e.component, float(e.data["started"])) for e in state.events(kind=EVENT_KIND)}
    newest_run: dict[str, float] = {}
    for job, started in runs:
        newest_run[job] = max(started, newest_run.get(job, started))
    newest_claim: dict[str, dict[str, object]] = {}
    for e in state.events(kind=CLAIM_KIND):
        newest_claim[e.component] = e.data
    out = []
    for job, claim in sorted(newest_claim.items()):
        started = float(str(claim["started"]))
        token = int(str(claim["token"]))
        if token >= fence.token or (job, started) in runs:
            continue
        if started < newest_run.get(job, float("-inf")):
            continue
        record = RunRecord(
            job,
            started,
            time.time(),
            "interrupted",
            error=f"its agent {claim['holder']} lost the lease (token {token}) mid-run;"
            f" rerun by {holder}",
        )
        state.record_event(
            EVENT_KIND, job, record.error or "", record.to_json(), at=record.ended, fence=fence
        )
        out.append(record)
    return out
