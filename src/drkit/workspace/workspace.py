"""The composition root: a plan file becomes opened repositories, a drill stack, a state store.

Everything that needs "where does this live" — drkit's state beside the plan, journals
under ``<state_dir>/drills/``, passwords from the plan's repository entries — is decided
here and nowhere below. The CLI calls one method per command.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drkit.drills.engine import write_journal
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.runner import run_scenario
from drkit.drills.scenarios import SCENARIOS, DrillOptions
from drkit.drills.stack import Stack
from drkit.errors import InputError, SecretMissing
from drkit.plan.loader import load_plan
from drkit.plan.models import Plan
from drkit.plan.models import Repository as RepoModel
from drkit.state.store import DrillRecord, StateStore

#: Which scenarios count as which activity of the plan's ``testing`` cadence.
ACTIVITY_SCENARIOS: dict[str, tuple[str, ...]] = {
    name: tuple(s.name for s in SCENARIOS.values() if s.cadence == name)
    for name in ("failover_drill", "regional_failover", "restore_test")
}


@dataclass
class Workspace:
    plan: Plan
    plan_path: Path
    _state: StateStore | None = field(default=None, repr=False)

    @classmethod
    def load(cls, plan_path: Path) -> Workspace:
        return cls(load_plan(plan_path), Path(plan_path))

    # --- where things live -------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        """``$DRKIT_STATE``, else ``<state_dir>/state.db`` (state_dir relative to the plan)."""
        env = os.environ.get("DRKIT_STATE")
        if env:
            return Path(env)
        return self.plan.resolve_path(self.plan.state_dir) / "state.db"

    @property
    def state_dir(self) -> Path:
        return self.state_path.parent

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "drills"

    def state(self) -> StateStore:
        if self._state is None:
            self._state = StateStore(self.state_path)
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    # --- secrets -----------------------------------------------------------------------

    def password(self, repo: RepoModel) -> str:
        """A repository's password from the plan: inline, ``password_env`` or ``password_file``."""
        if repo.password is not None:
            return str(repo.password.reveal())
        if repo.password_file:
            path = self.plan.resolve_path(repo.password_file)
            try:
                return path.read_text().rstrip("\r\n")
            except OSError as exc:
                raise InputError(
                    f"repository {repo.name!r}: cannot read password_file {path}: {exc.strerror}",
                    hint="check repositories.*.password_file in the plan",
                ) from exc
        env = repo.password_env or (
            "DRKIT_PASSWORD" if repo.name == self.plan.repositories.primary.name else None
        )
        if env and os.environ.get(env):
            return os.environ[env]
        raise SecretMissing(
            f"repository {repo.name!r}: no password"
            + (f" (environment variable {env} is not set)" if env else ""),
            hint=f"export {env}=..." if env else "set password_env or password_file in the plan",
        )

    def stack(self) -> Stack:
        return Stack(plan=self.plan, password=self.password, scratch=self.state_dir / "scratch")

    # --- drills ------------------------------------------------------------------------

    def run_drill(
        self,
        scenario: str,
        options: DrillOptions | None = None,
        *,
        on_step: Callable[[StepRecord], None] | None = None,
    ) -> tuple[Journal, Path]:
        """Run one drill, write its journal beside the plan and record it in the state.

        An interrupted drill (Ctrl-C) is journaled and recorded too before the
        :class:`~drkit.drills.engine.DrillInterrupted` propagates.
        """
        from drkit.drills.engine import DrillInterrupted

        try:
            journal = run_scenario(
                self.stack(), scenario, options, plan_label=str(self.plan_path), on_step=on_step
            )
        except DrillInterrupted as exc:
            self._keep(exc.journal)
            raise
        return journal, self._keep(journal)

    def _keep(self, journal: Journal) -> Path:
        path = write_journal(journal, self.journal_dir)
        self.state().record_drill(journal.model_dump(mode="json"))
        return path

    def drill_history(self, scenario: str | None = None) -> list[DrillRecord]:
        if not self.state_path.exists():
            return []
        return self.state().drills(scenario)

    # --- what the plan's testing cadence reads -----------------------------------------

    def last_success(self, activity: str, subject: str | None = None) -> datetime | None:
        """When ``activity`` last succeeded (a passing drill, an ok restore test)."""
        state = self.state()
        times: list[float] = []
        if activity == "restore_test":
            times += [v.at for v in state.verifications(subject) if v.ok]
        if activity == "gameday":
            times += [e.at for e in state.events(kind="gameday.completed")]
        for name in ACTIVITY_SCENARIOS.get(activity, ()):
            times += [d.at for d in state.drills(name) if d.verdict == "pass"]
        return datetime.fromtimestamp(max(times), UTC) if times else None
