"""Restore tests of one component: a file tree, each collection of a vector store, a
harness, an MLflow registry; each check a :class:`RestoreCheck`, recorded in drkit's state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.drills.data import RestoreTest, component_path, restore_test
from drkit.errors import UsageError
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import VerifyReport, vector_snapshots, verify_collection
from drkit.repository import Repository
from drkit.workspace import harness, mlflow_registry
from drkit.workspace.scratch_test import ScratchCheck

if TYPE_CHECKING:
    from drkit.workspace.workspace import Workspace


def restore_component(
    ws: Workspace,
    component: str,
    *,
    repo: Repository | None = None,
    repository: str | None = None,
) -> list[RestoreCheck]:
    """Restore test of a component's newest snapshot(s): a file tree, or each collection
    of a vector store (restored into a scratch collection of its engine, count,
    checksums and golden queries checked, dropped). A good one is marked verified in
    the repository; every one is recorded in drkit's state with its duration (the
    achieved RTO). ``repo`` (already open) wins over ``repository`` (a plan name,
    default the primary)."""
    try:
        comp = ws.plan.component(component)
    except KeyError:
        raise UsageError(
            f"the plan has no component {component!r}",
            hint="components: " + ", ".join(c.name for _, c in ws.plan.components()),
        ) from None
    name = repository or ws.plan.repositories.primary.name
    with contextlib.ExitStack() as stack:
        if repo is None:
            repo = stack.enter_context(ws.stack().open_repository(name))
        if isinstance(comp, VectorStoreModel):
            checks = _vector_restore_test(comp, repo)
        elif harness.is_harness(comp):  # clone, git bundle verify, fsck, refs
            h = harness.restore_test(repo, comp.name, ws.stack().scratch)
            checks = [_from_scratch(h)]
        elif mlflow_registry.is_mlflow(comp):  # rebuilt in a scratch SQLite MLflow
            from drkit.workspace.mlflow_restore import restore_test as registry_test

            m = registry_test(repo, comp.name, ws.stack().scratch)
            checks = [_from_scratch(m)]
        else:
            scratch = ws.stack().scratch
            scratch.mkdir(parents=True, exist_ok=True)
            snap = repo.find_snapshot("latest", comp.name)
            result = restore_test(
                repo,
                comp.name,
                scratch,
                source=component_path(ws.plan, comp),
                snapshot=snap,
                # a snapshot of nothing is never marked verified (nothing_verified)
                mark=bool(snap.summary.get("files", 1)),
            )
            checks = [RestoreCheck.of_files(result)]
    checks = [c.nothing_verified() for c in checks]
    state = ws.state()
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


def _vector_restore_test(comp: VectorStoreModel, repo: Repository) -> list[RestoreCheck]:
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
            f"restored {r.recall_restored}, live {r.recall_live}; live collection: {r.live}"
            + "".join(
                f"; {k} {v:.1f}s" for k, v in r.phases_s.items() if k in ("restore", "check")
            ),
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
