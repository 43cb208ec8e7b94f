"""The composition root: a plan file becomes opened repositories, a drill stack, a state store.

Everything that needs "where does this live" — drkit's state beside the plan, journals
under ``<state_dir>/drills/``, passwords from the plan's repository entries — is decided
here and nowhere below. The CLI calls one method per command.

:class:`Workspace` holds the plan and the state and opens what the plan names; what its
methods run lives beside it: restore tests in :mod:`drkit.workspace.restore_check`, the
testing cadence's reading of the state in :mod:`drkit.workspace.cadence`, game days in
:mod:`drkit.workspace.gameday` (``GameDay``, ``run_gameday``, re-exported here).
"""

from __future__ import annotations

__all__ = ["ACTIVITY_SCENARIOS", "GameDay", "RestoreCheck", "Workspace", "run_gameday"]

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.drills.engine import DrillInterrupted, write_journal
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.runner import run_scenario
from drkit.drills.scenarios import DrillOptions
from drkit.drills.scenarios import get as get_scenario
from drkit.drills.stack import Stack
from drkit.errors import UsageError
from drkit.gateway.config import GatewayConfig, from_plan
from drkit.plan.lint import Violation
from drkit.plan.loader import load_plan
from drkit.plan.models import Plan
from drkit.plan.models import Repository as RepoModel
from drkit.plan.secrets import repository_password
from drkit.repository import Repository
from drkit.state.store import (
    DrillRecord,
    StateStore,
    has_state,
    plan_state_location,
    plan_state_path,
)
from drkit.workspace import cadence
from drkit.workspace.access import kdf_params
from drkit.workspace.cadence import ACTIVITY_SCENARIOS
from drkit.workspace.gameday import GameDay, run_gameday
from drkit.workspace.overdue import StateContext, overdue_violations
from drkit.workspace.repo_checks import repository_checks
from drkit.workspace.restore_check import RestoreCheck, restore_component


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
        """The SQLite file (``$DRKIT_STATE``, else ``<state_dir>/state.db``): where drkit's
        files go beside it; open the state itself at :attr:`state_location`."""
        return plan_state_path(self.plan)

    @property
    def state_location(self) -> Path | str:
        """Where the state is: a ``postgresql://`` URL or the SQLite file of
        :attr:`state_path` (every user of the state opens it here)."""
        return plan_state_location(self.plan)

    @property
    def state_dir(self) -> Path:
        return self.state_path.parent

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "drills"

    def state(self) -> StateStore:
        if self._state is None:
            self._state = StateStore(self.state_location)
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- secrets -----------------------------------------------------------------------

    def password(self, repo: RepoModel) -> str:
        """A repository's password from the plan: inline, ``password_file`` or ``password_env``."""
        return repository_password(self.plan, repo)

    # --- opened connectors -------------------------------------------------------------

    def gateway_config(self) -> GatewayConfig:
        """The gateway's config from the plan; events go to ``<state_dir>/gateway-events.jsonl``."""
        return from_plan(self.plan, events_path=str(self.state_dir / "gateway-events.jsonl"))

    def vector_store(self, name: str) -> VectorStore:
        """Open the plan's vector store ``name`` through its connector (close it after use)."""
        for vs in self.plan.vector_stores:
            if vs.name == name:
                return open_vector_store(vs.engine)
        raise UsageError(
            f"the plan has no vector store {name!r}",
            hint="vector stores: " + (", ".join(v.name for v in self.plan.vector_stores) or "none"),
        )

    def stack(self) -> Stack:
        return Stack(
            plan=self.plan,
            password=self.password,
            scratch=self.state_dir / "scratch",
            state_location=self.state_location,
            kdf=kdf_params(),
        )

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
        get_scenario(scenario)  # an unknown name is refused before anything is recorded
        # the status page shows the drill's window as maintenance while it runs
        state = self.state()
        state.record_event(
            "drill.started", scenario, f"drill {scenario} started", {"scenario": scenario}
        )
        try:
            journal = run_scenario(
                self.stack(),
                scenario,
                options,
                plan_label=str(self.plan_path),
                on_step=on_step,
            )
        except DrillInterrupted as exc:
            self._keep(exc.journal)
            raise
        finally:
            state.record_event(
                "drill.ended", scenario, f"drill {scenario} ended", {"scenario": scenario}
            )
        return journal, self._keep(journal)

    def _keep(self, journal: Journal) -> Path:
        path = write_journal(journal, self.journal_dir)
        state = self.state()
        state.record_drill(journal.model_dump(mode="json"))
        if journal.verdict == "pass":
            # a drill's verified restore is a restore test of that component
            for step in journal.steps:
                tests = step.data.get("restore_tests")
                for t in tests if isinstance(tests, list) else []:
                    state.record_verification(
                        str(t["component"]),
                        str(t["snapshot"]),
                        ok=bool(t.get("ok", True)),
                        duration_s=float(t["duration_s"]),
                        details={"by": f"drill {journal.id}"},
                        at=step.ended_at,
                    )
        return path

    # --- data --------------------------------------------------------------------------

    def restore_test(
        self, component: str, *, repo: Repository | None = None, repository: str | None = None
    ) -> list[RestoreCheck]:
        """Restore test of a component's newest snapshot(s), recorded in drkit's state:
        see :func:`drkit.workspace.restore_check.restore_component`."""
        return restore_component(self, component, repo=repo, repository=repository)

    def drill_history(self, scenario: str | None = None) -> list[DrillRecord]:
        if not has_state(plan_state_location(self.plan)):
            return []
        return self.state().drills(scenario)

    # --- what the plan's testing cadence reads -----------------------------------------

    def last_success(self, activity: str, subject: str | None = None) -> datetime | None:
        """When ``activity`` last succeeded: see :func:`drkit.workspace.cadence.last_success`."""
        return cadence.last_success(self.state(), activity, subject)

    def last_failure(self, activity: str, subject: str | None = None) -> datetime | None:
        """When ``activity`` last failed: see :func:`drkit.workspace.cadence.last_failure`."""
        return cadence.last_failure(self.state(), activity, subject)

    def repository_checks(self, now: datetime | None = None) -> list[Violation]:
        """What ``plan check`` asks the repositories (DR304, DR593): see
        :func:`drkit.workspace.repo_checks.repository_checks`."""
        return repository_checks(self, now)

    def overdue(self, now: datetime | None = None) -> list[Violation]:
        """Drills and restore tests overdue by the plan's cadence, or whose newest attempt
        failed (none without a state)."""
        if not has_state(plan_state_location(self.plan)):
            return []  # drkit never ran here: `plan check` judges the plan alone
        ctx = StateContext(
            now=now or datetime.now(UTC),
            last_success=self.last_success,
            last_failure=self.last_failure,
        )
        return overdue_violations(self.plan, ctx)
