"""The composition root: a plan file becomes opened repositories, a drill stack, a state store.

Everything that needs "where does this live" — drkit's state beside the plan, journals
under ``<state_dir>/drills/``, passwords from the plan's repository entries — is decided
here and nowhere below. The CLI calls one method per command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.drills.data import RestoreTest, component_path, restore_test
from drkit.drills.engine import DrillInterrupted, write_journal
from drkit.drills.journal import Journal, StepRecord
from drkit.drills.live_options import LiveOptions
from drkit.drills.report import render_html, scorecard
from drkit.drills.runner import run_scenario, supported
from drkit.drills.scenarios import SCENARIOS, DrillOptions
from drkit.drills.scenarios import get as get_scenario
from drkit.drills.stack import Stack
from drkit.errors import UsageError
from drkit.gateway.config import GatewayConfig, from_plan
from drkit.plan.lint import Violation
from drkit.plan.loader import load_plan
from drkit.plan.models import Plan
from drkit.plan.models import Repository as RepoModel
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.plan.secrets import repository_password
from drkit.replication.vectors import VerifyReport, vector_snapshots, verify_collection
from drkit.repository import Repository
from drkit.state.store import (
    DrillRecord,
    StateStore,
    Verification,
    has_state,
    plan_state_location,
    plan_state_path,
)
from drkit.workspace import harness, mlflow_registry
from drkit.workspace.access import kdf_params
from drkit.workspace.costing import gameday_cost_tiers
from drkit.workspace.overdue import StateContext, overdue_violations
from drkit.workspace.repo_checks import repository_checks
from drkit.workspace.scratch_test import ScratchCheck

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
        """Restore test of a component's newest snapshot(s): a file tree, or each collection
        of a vector store (restored into a scratch collection of its engine, count,
        checksums and golden queries checked, dropped). A good one is marked verified in
        the repository; every one is recorded in drkit's state with its duration (the
        achieved RTO). ``repo`` (already open) wins over ``repository`` (a plan name,
        default the primary)."""
        try:
            comp = self.plan.component(component)
        except KeyError:
            raise UsageError(
                f"the plan has no component {component!r}",
                hint="components: " + ", ".join(c.name for _, c in self.plan.components()),
            ) from None
        name = repository or self.plan.repositories.primary.name
        with contextlib.ExitStack() as stack:
            if repo is None:
                repo = stack.enter_context(self.stack().open_repository(name))
            if isinstance(comp, VectorStoreModel):
                checks = self._vector_restore_test(comp, repo)
            elif harness.is_harness(comp):  # clone, git bundle verify, fsck, refs
                h = harness.restore_test(repo, comp.name, self.stack().scratch)
                checks = [_from_scratch(h)]
            elif mlflow_registry.is_mlflow(comp):  # rebuilt in a scratch SQLite MLflow
                from drkit.workspace.mlflow_restore import restore_test as registry_test

                m = registry_test(repo, comp.name, self.stack().scratch)
                checks = [_from_scratch(m)]
            else:
                scratch = self.stack().scratch
                scratch.mkdir(parents=True, exist_ok=True)
                snap = repo.find_snapshot("latest", comp.name)
                result = restore_test(
                    repo,
                    comp.name,
                    scratch,
                    source=component_path(self.plan, comp),
                    snapshot=snap,
                    # a snapshot of nothing is never marked verified (nothing_verified)
                    mark=bool(snap.summary.get("files", 1)),
                )
                checks = [RestoreCheck.of_files(result)]
        checks = [c.nothing_verified() for c in checks]
        state = self.state()
        run = uuid.uuid4().hex  # the checks of one run pass or fail together (last_success)
        for c in checks:
            state.record_verification(
                c.component,
                c.snapshot,
                ok=c.ok,
                duration_s=c.duration_s,
                details={"repository": repo.store.url, "run": run, **c.details},
            )
        return checks

    def _vector_restore_test(self, comp: VectorStoreModel, repo: Repository) -> list[RestoreCheck]:
        with open_vector_store(str(comp.engine), create=False) as store:
            names = list(comp.collections) or sorted(
                {str(s.meta.get("collection")) for s in vector_snapshots(repo, comp.name)}
            )
            if not names:
                raise UsageError(
                    f"component {comp.name!r} has no vector snapshots",
                    hint=f"drkit backup {comp.name}",
                )
            out = []
            for coll in names:
                snaps = vector_snapshots(repo, comp.name, coll)
                if not snaps:
                    raise UsageError(
                        f"no snapshot of {comp.name}/{coll}", hint=f"drkit backup {comp.name}"
                    )
                newest = snaps[-1]
                # a snapshot of no record is never marked verified (nothing_verified)
                mark = bool(newest.meta.get("records", 1))
                report = verify_collection(repo, newest, store, mark=mark)
                out.append(RestoreCheck.of_vectors(report))
        return out

    def drill_history(self, scenario: str | None = None) -> list[DrillRecord]:
        if not has_state(plan_state_location(self.plan)):
            return []
        return self.state().drills(scenario)

    # --- what the plan's testing cadence reads -----------------------------------------

    def last_success(self, activity: str, subject: str | None = None) -> datetime | None:
        """When ``activity`` last succeeded: a passing drill, a passing game day (every
        drill passed), a restore test of which every check was ok. Failed, aborted and
        interrupted attempts never count."""
        state = self.state()
        times: list[float] = []
        if activity == "restore_test":
            times += _passing_runs(state.verifications(subject))
        if activity == "gameday":
            times += [
                e.at for e in state.events(kind="gameday.completed") if e.data.get("passed") is True
            ]
        if activity != "restore_test":  # drills' restores are recorded per component
            for name in ACTIVITY_SCENARIOS.get(activity, ()):
                times += [
                    d.at for d in state.drills(name) if d.verdict == "pass" and _counts(activity, d)
                ]
        return datetime.fromtimestamp(max(times), UTC) if times else None

    def last_failure(self, activity: str, subject: str | None = None) -> datetime | None:
        """When ``activity`` last failed (a failed, aborted or errored drill or game day,
        a restore test with a failed check); interrupted drills are not failures."""
        state = self.state()
        times: list[float] = []
        if activity == "restore_test":
            times += _failed_runs(state.verifications(subject))
        if activity == "gameday":
            times += [
                e.at
                for e in state.events(kind="gameday.completed")
                if e.data.get("passed") is not True
            ]
        if activity != "restore_test":
            for name in ACTIVITY_SCENARIOS.get(activity, ()):
                times += [
                    d.at
                    for d in state.drills(name)
                    if d.verdict in _FAILED and _counts(activity, d)
                ]
        return datetime.fromtimestamp(max(times), UTC) if times else None

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


#: drill verdicts that are failures (``interrupted``: stopped by the user, no verdict)
_FAILED = ("fail", "aborted", "error")


def _counts(activity: str, drill: DrillRecord) -> bool:
    """The regional failover exercise is real traffic on the other region: only a live
    region-outage that drained the whole region (``--live GATEWAY_URL``, every route with
    a target there, all of their traffic: journal metric ``region_drained``) is one."""
    if activity != "regional_failover":
        return True
    metrics = drill.journal.get("metrics") or {}
    return bool(metrics.get("live")) and bool(metrics.get("region_drained"))


def _runs(verifications: list[Verification]) -> list[list[Verification]]:
    """Restore checks grouped by run (one ``verify`` of a component, all its collections;
    one drill); records without a run are runs of their own."""
    runs: dict[tuple[str, str], list[Verification]] = {}
    for i, v in enumerate(verifications):
        run = v.details.get("run") or v.details.get("by") or f"#{i}"
        runs.setdefault((v.component, str(run)), []).append(v)
    return list(runs.values())


def _passing_runs(verifications: list[Verification]) -> list[float]:
    """When restore tests passed: a run passes only when every one of its checks was ok."""
    return [max(v.at for v in vs) for vs in _runs(verifications) if all(v.ok for v in vs)]


def _failed_runs(verifications: list[Verification]) -> list[float]:
    return [max(v.at for v in vs) for vs in _runs(verifications) if not all(v.ok for v in vs)]


def _from_scratch(c: ScratchCheck) -> RestoreCheck:
    """A scratch restore test (a harness, an MLflow registry) as a restore check."""
    return RestoreCheck(
        c.component, c.snapshot, c.ok, c.duration_s, c.summary, c.problems, c.details
    )


@dataclass(frozen=True, slots=True)
class RestoreCheck:
    """One restore test: a file tree, or one collection of a vector store."""

    component: str
    snapshot: str
    ok: bool
    duration_s: float
    summary: str
    problems: tuple[str, ...]
    details: dict[str, Any]
    collection: str | None = None
    #: what the test saw that does not fail it (a live collection that moved on)
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.component + (f"/{self.collection}" if self.collection else "")

    def nothing_verified(self) -> RestoreCheck:
        """This check, failed when its snapshot held nothing (0 files, 0 records): a
        restore of nothing proves nothing about the backups."""
        d = self.details
        empty = (d.get("kind") == "files" and not d.get("files")) or (
            d.get("kind") == "vectors" and not d.get("records_expected")
        )
        if not empty:
            return self
        problem = f"snapshot {self.snapshot[:8]} holds nothing: there was nothing to verify"
        return dataclasses.replace(self, ok=False, problems=(*self.problems, problem))

    @classmethod
    def of_files(cls, t: RestoreTest) -> RestoreCheck:
        return cls(
            t.component,
            t.snapshot,
            t.ok,
            t.duration_s,
            f"{t.files} files, {t.bytes} bytes",
            t.problems,
            {"kind": "files", "files": t.files, "bytes": t.bytes},
        )

    @classmethod
    def of_vectors(cls, r: VerifyReport) -> RestoreCheck:
        return cls(
            r.component,
            r.snapshot,
            r.ok,
            r.duration_s,
            f"{r.records_restored}/{r.records_expected} records, recall of the exact top-k: "
            f"restored {r.recall_restored}, live {r.recall_live}; live collection: {r.live}",
            tuple(r.problems),
            {"kind": "vectors", **r.to_json()},
            r.collection,
            tuple(r.notes),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "collection": self.collection,
            "snapshot": self.snapshot,
            "ok": self.ok,
            "duration_s": self.duration_s,
            "problems": list(self.problems),
            **{k: v for k, v in self.details.items() if k not in ("component", "collection")},
        }


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
