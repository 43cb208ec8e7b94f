"""The agent's scheduler: which job is due, and running it safely.

- *Due*: a job with no recorded run is due now; otherwise at its schedule's next run
  after its last recorded start (:meth:`~drkit.plan.schedule.CronSchedule.next_after`,
  cronsim for cron), plus a seeded jitter. Missed slots collapse into one run (catch-up
  once), since only the last run anchors the next. A last start later than the clock
  (the clock jumped back, or another agent's clock is ahead) anchors at the moment that
  was first seen instead: a backward jump delays a job by one period, never by the jump.
- *No overlap*: a job never runs twice at once; ``exclusive`` jobs run alone; a job
  waits for the jobs it comes ``after`` to have succeeded once and to be idle.
- *Concurrency*: at most ``concurrency`` jobs at a time (threads: jobs wait on I/O).
- *Retries*: only errors that say ``retryable`` (:mod:`drkit.errors`), with exponential
  backoff; anything else fails the run at once and is recorded with its message.
- *Stop*: :meth:`Scheduler.stop` starts no new job and cuts retry waits short; running
  jobs finish (the caller waits for them up to a grace period).
- *Interrupted*: a run recorded ``interrupted`` (its agent died or lost the lease
  mid-run) makes the job due again at once: its slot is rerun, not skipped.
- *Fenced*: under a lease, a job is claimed before it runs; a claim or a result that the
  state rejects (another agent leads now) ends the run without a record.

The clock is injected (``clock``), so tests can drive the cadence without waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from drkit.agent.history import History, RunRecord
from drkit.agent.jobs import Job
from drkit.errors import DrkitError

log = logging.getLogger("drkit.agent")

#: retries of a run's record while the state is unreachable (about 30s in all)
RECORD_RETRIES = 8


@dataclass(frozen=True, slots=True)
class Policy:
    """How the scheduler runs jobs."""

    concurrency: int = 2
    #: at most this many seconds added to each next run, drawn from a seeded generator
    jitter: float = 0.0
    seed: int = 0
    #: retries of a transient failure (attempts = retries + 1)
    retries: int = 3
    #: the first retry waits this long, each next one twice as long
    backoff: float = 1.0


class Scheduler:
    """Runs ``jobs`` by their cadence; records every run in ``history``."""

    def __init__(
        self,
        jobs: Sequence[Job],
        history: History,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.jobs = list(jobs)
        self.history = history
        self.policy = policy or Policy()
        self.clock = clock
        self.on_run = on_run
        self._running: dict[str, threading.Thread] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self.started_at = clock()
        #: per job: a last start seen in the future, and when (see :meth:`next_due`)
        self._future: dict[str, tuple[float, float]] = {}

    # --- when ----------------------------------------------------------------------------

    def _jitter(self, job: Job, anchor: float) -> float:
        if self.policy.jitter <= 0:
            return 0.0
        rng = random.Random(f"{self.policy.seed}:{job.id}:{anchor}")
        return rng.uniform(0.0, self.policy.jitter)

    def next_due(self, job: Job) -> float:
        """When ``job`` is next due (epoch seconds); now-or-earlier when it is due."""
        last = self.history.last(job.id)
        if last is None:
            return self.started_at
        started = last.started
        now = self.clock()
        if started > now:
            # a last start later than now: this clock went back (or the agent that ran it
            # had a clock ahead of this one); anchored at when that was first seen, the
            # job waits one period, not the size of the jump
            seen = self._future.get(job.id)
            if seen is None or seen[0] != started:
                self._future[job.id] = seen = (started, now)
            started = seen[1]
        if last.status == "interrupted":
            return started
        anchor = datetime.fromtimestamp(started, UTC)
        return job.schedule.next_after(anchor).timestamp() + self._jitter(job, last.started)

    def waiting_for(self, job: Job) -> str | None:
        """Why ``job`` may not start now though due (``None``: it may)."""
        with self._cond:
            running = set(self._running)
        if job.id in running:
            return "already running"
        if any(j.exclusive for j in self.jobs if j.id in running):
            return "an exclusive job is running"
        if job.exclusive and running:
            return "runs alone: other jobs are running"
        for dep in job.after:
            if dep in running:
                return f"{dep} is running"
            if self.history.last_success(dep) is None:
                return f"{dep} has not succeeded yet"
        if len(running) >= self.policy.concurrency:
            return "concurrency limit"
        return None

    # --- run -----------------------------------------------------------------------------

    @property
    def running(self) -> list[str]:
        with self._cond:
            return sorted(self._running)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def step(self, *, only: set[str] | None = None) -> list[str]:
        """Start every job that is due and may start (``only``: among these ids); the
        ids started."""
        if self.stopping:
            return []
        now = self.clock()
        started = []
        # the longest-waiting first: a job listed late is not starved by early ones
        due = sorted(
            (d, i, job)
            for i, job in enumerate(self.jobs)
            if (only is None or job.id in only) and (d := self.next_due(job)) <= now
        )
        for _, _, job in due:
            if self.waiting_for(job) is not None:
                continue
            thread = threading.Thread(
                target=self._execute, args=(job,), name=f"drkit-agent {job.id}", daemon=True
            )
            with self._cond:
                self._running[job.id] = thread
            thread.start()
            started.append(job.id)
        return started

    def _execute(self, job: Job) -> None:
        started = self.clock()
        attempts = 0
        record: RunRecord
        try:
            try:
                self.history.claim(job.id, started)
            except DrkitError as exc:  # deposed (Fenced) or the state is unreachable
                log.warning("%s not started: %s", job.id, exc)
                return
            while True:
                attempts += 1
                try:
                    out = job.run()
                except DrkitError as exc:
                    if exc.retryable and attempts <= self.policy.retries and not self.stopping:
                        wait = self.policy.backoff * 2 ** (attempts - 1)
                        log.warning("%s: %s; retry %d in %.1fs", job.id, exc, attempts, wait)
                        self._stopping.wait(wait)
                        continue
                    record = RunRecord(
                        job.id,
                        started,
                        self.clock(),
                        "failed",
                        attempts,
                        error=str(exc),
                        transient=exc.retryable,
                    )
                except OSError as exc:
                    error = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
                    record = RunRecord(
                        job.id, started, self.clock(), "failed", attempts, error=error
                    )
                except Exception as exc:  # a bug must not take the agent down: record it
                    log.exception("%s crashed", job.id)
                    record = RunRecord(
                        job.id,
                        started,
                        self.clock(),
                        "failed",
                        attempts,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                else:
                    summary, nbytes = (
                        (out, None) if isinstance(out, str) else (out.summary, out.bytes)
                    )
                    record = RunRecord(
                        job.id, started, self.clock(), "ok", attempts, summary, bytes=nbytes
                    )
                break
            if not self._record(record):
                return
            if record.status == "ok":
                log.info("%s ok in %.2fs: %s", job.id, record.duration_s, record.summary)
            else:
                log.error("%s failed after %d attempt(s): %s", job.id, attempts, record.error)
            if self.on_run is not None:
                self.on_run(record)
        finally:
            with self._cond:
                self._running.pop(job.id, None)
                self._cond.notify_all()

    def _record(self, record: RunRecord) -> bool:
        """Record ``record``, retrying while the state is unreachable (a restarted
        database): safe, since a fenced write is rejected once another agent leads;
        whether it was recorded."""
        for attempt in range(RECORD_RETRIES + 1):
            try:
                self.history.record(record)
                return True
            except DrkitError as exc:  # Fenced: a deposed leader's late result
                if not exc.retryable or attempt == RECORD_RETRIES:
                    log.error("%s: its result was not recorded: %s", record.job, exc)
                    return False
                time.sleep(min(0.5 * 2**attempt, 5.0))
        return False

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, woken early by a job ending or :meth:`stop`."""
        with self._cond:
            self._cond.wait(timeout)

    def stop(self) -> None:
        """Start nothing new; retry waits end now; running jobs go on to their end."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> list[str]:
        """Wait for the running jobs (up to ``timeout`` seconds); the ids still running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            return sorted(self._running)

    def next_wake(self) -> float:
        """Seconds until the earliest job is due (0: one is due now)."""
        now = self.clock()
        return max(0.0, min(self.next_due(j) for j in self.jobs) - now)
