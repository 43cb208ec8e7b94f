"""The data half of ``region-outage``: restore every component from outside the lost region.

File trees go to a scratch directory; collections into a scratch collection of the
component's engine (standing in for the surviving region's engine). Each restore is
recorded as a :class:`RestoredCopy`; :meth:`RegionRestore.remove` drops what was restored.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from drkit.connectors.vectorstore.transfer import temp_name
from drkit.drills.data import component_path
from drkit.drills.stack import RepositorySession, Stack
from drkit.drills.vectors import Engines, snapshotted_collections
from drkit.errors import DrillError, DrkitError, SnapshotNotFound
from drkit.plan.models import Component
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import restore_collection, vector_snapshots
from drkit.repository import restore


@dataclass(frozen=True, slots=True)
class RestoredCopy:
    """One component (or one collection of a vector store) restored outside the region."""

    component: str
    snapshot: str
    repository: str
    duration_s: float
    #: the snapshot's age at the fault: what the region's loss cost of this component
    age_s: float
    #: vector stores only: the collection, records restored and the scratch collection
    collection: str | None = None
    records: int | None = None
    scratch: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"component": self.component}
        if self.collection is not None:
            out["collection"] = self.collection
        out |= {
            "snapshot": self.snapshot,
            "repository": self.repository,
            "duration_s": self.duration_s,
        }
        if self.collection is not None:
            out |= {"records": self.records, "scratch": self.scratch}
        out["age_s"] = self.age_s
        return out


class ScratchCollection(NamedTuple):
    """A collection restored into: where, and how many records the snapshot holds."""

    engine: str
    name: str
    expected: int


@dataclass
class RegionRestore:
    """Restores from the first repository that can serve each component, primary first."""

    stack: Stack
    region: str
    work: Path
    engines: Engines = field(default_factory=Engines)
    scratch_collections: list[ScratchCollection] = field(default_factory=list)
    #: when a repository of the lost region first failed (the data side's detection)
    detected: float | None = None

    def _failed(self) -> None:
        if self.detected is None:
            self.detected = time.time()

    def files(self, comp: Component, repos: RepositorySession, fault_at: float) -> RestoredCopy:
        """Restore ``comp``'s newest snapshot into ``work/<component>``."""
        tried: list[str] = []
        for model in self.stack.repositories():
            try:
                repo = repos.get(model.name)
                snap = repo.find_snapshot("latest", comp.name)
                result = restore(repo, snap, self.work / comp.name)
            except SnapshotNotFound:
                tried.append(f"{model.name}: no snapshot")
                continue
            except DrkitError as exc:
                self._failed()
                tried.append(f"{model.name}: {type(exc).__name__}")
                continue
            return RestoredCopy(
                component=comp.name,
                snapshot=snap.id,
                repository=model.name,
                duration_s=result.duration_s,
                age_s=max(0.0, fault_at - snap.datetime.timestamp()),
            )
        raise DrillError(
            f"no replica outside region {self.region!r} holds {comp.name!r} "
            f"(tried {'; '.join(tried)})"
        )

    def vectors(
        self, vs: VectorStoreModel, repos: RepositorySession, fault_at: float
    ) -> list[RestoredCopy]:
        """Restore each collection of ``vs`` from the first repository that holds them
        all, into a scratch collection of its engine."""
        tried: list[str] = []
        for model in self.stack.repositories():
            try:
                repo = repos.get(model.name)
                names = list(vs.collections) or snapshotted_collections(repo, vs.name)
                snaps = {n: vector_snapshots(repo, vs.name, n) for n in names}
            except DrkitError as exc:
                self._failed()
                tried.append(f"{model.name}: {type(exc).__name__}")
                continue
            if not names or not all(snaps.values()):
                tried.append(f"{model.name}: no snapshot")
                continue
            store = self.engines.get(str(vs.engine))
            out = []
            for name in names:
                snap = snaps[name][-1]
                scratch = temp_name(f"dr_{name}")
                expected = int(snap.meta.get("records", -1))
                self.scratch_collections.append(
                    ScratchCollection(str(vs.engine), scratch, expected)
                )
                rep = restore_collection(repo, snap, store, scratch)
                out.append(
                    RestoredCopy(
                        component=vs.name,
                        collection=name,
                        snapshot=snap.id,
                        repository=model.name,
                        duration_s=rep.duration_s,
                        records=rep.records,
                        scratch=scratch,
                        age_s=max(0.0, fault_at - snap.datetime.timestamp()),
                    )
                )
            return out
        raise DrillError(
            f"no replica outside region {self.region!r} holds {vs.name!r} "
            f"(tried {'; '.join(tried)})"
        )

    def check_whole(self, comps: list[Component]) -> None:
        """Every scratch collection holds the snapshot's records; every tree restored."""
        for url, scratch, expected in self.scratch_collections:
            got = self.engines.get(url).count(scratch)
            if got != expected:
                raise DrillError(f"{scratch}: {got} records restored, the snapshot has {expected}")
        for comp in comps:
            got = sum(1 for p in (self.work / comp.name).rglob("*") if p.is_file())
            if got == 0 and any(component_path(self.stack.plan, comp).iterdir()):
                raise DrillError(f"{comp.name}: restored nothing")

    def remove(self) -> None:
        """Drop the restored trees and scratch collections; close the engines."""
        shutil.rmtree(self.work, True)
        try:
            for url, scratch, _ in self.scratch_collections:
                self.engines.get(url).drop(scratch, missing_ok=True)
        finally:
            self.engines.close()
