"""``data-corruption``: data components are deleted and altered in place.

Each component drilled (``--subject``, default: every data component of the plan — its
vector stores, one case per collection, and its components with a ``path``) is worked
on in a sandbox (a drill must not destroy the data it protects). Before any sandbox is
built, the steady state checks that a *verified* snapshot exists (and, for a collection,
that its vectors have the live collection's names, dimensions and metrics: a
re-embedded collection cannot be recovered from the old model's snapshot):

- *file trees*: a copy of the live directory; the fault deletes and bit-flips a seeded
  share of the files; detection compares the copy's fingerprint with the newest
  *verified* snapshot's; recovery restores that snapshot; verify checks it bit-exact;
- *vector collections*: a copy of the live collection in the same engine (a real
  collection); the fault deletes a seeded share of the records and overwrites the
  vectors of as many; detection compares count and per-record checksums with the
  newest verified snapshot's index; recovery drops the damaged collection and restores
  that snapshot under its name (atomic: temporary collection, then renamed); verify
  checks count and every record's checksum against the snapshot.

With ``--live`` (``DrillOptions.live``) a collection is not copied: the live collection
itself is damaged and repaired as ``drkit restore --replace`` does (restored beside it,
verified, swapped in); the rollback repairs it too if the drill stops before recovery.
File trees are always drilled in a sandbox.

RPO = the writes the restore loses — files, or records, added, changed or removed in the
live data since that snapshot, counted (``writes_lost``) — and their window, the
snapshot's age at the fault (the oldest across the components drilled).
"""

from __future__ import annotations

import math
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.connectors.vectorstore.base import CollectionConfig
from drkit.connectors.vectorstore.transfer import copy_collection, temp_name
from drkit.drills.data import (
    Fingerprint,
    Verified,
    component_path,
    diff,
    file_components,
    fingerprint,
    newest_verified,
)
from drkit.drills.engine import Drill, DrillContext, Step
from drkit.drills.scenarios.base import DrillOptions, Scenario
from drkit.drills.stack import RepositorySession, Stack
from drkit.drills.vectors import (
    Engines,
    collections_of,
    corrupt_collection,
    newest_verified_vectors,
    vector_components,
)
from drkit.errors import DrillError, UsageError
from drkit.plan.models import Component, Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import (
    Opened,
    ReplaceReport,
    RestoreReport,
    collection_fingerprint,
    diff_collection,
    fingerprint_diff,
    open_snapshot,
    replace_collection,
    restore_collection,
    snapshot_fingerprint,
)
from drkit.replication.vectors.leftovers import clean_leftovers
from drkit.replication.vectors.snapshot import same_shape
from drkit.repository import restore

#: share of the files the fault deletes, and the share it alters (at least one each)
DELETE_SHARE = 0.1
ALTER_SHARE = 0.1
#: at most this many ids or paths are listed in a journal step
LISTED = 20


def unsupported(plan: Plan) -> str | None:
    if not file_components(plan) and not vector_components(plan):
        return (
            "the plan has no vector store and no dataset, eval set, eval results or model "
            "directory (path)"
        )
    return None


def pick_components(plan: Plan, name: str | None) -> list[Component]:
    comps: list[Component] = [*vector_components(plan), *file_components(plan)]
    if name is None:
        return comps
    for c in comps:
        if c.name == name:
            return [c]
    raise UsageError(
        f"the plan has no vector store or component with a path named {name!r}",
        hint="one of: " + ", ".join(c.name for c in comps),
    )


@dataclass
class _Totals:
    """What the cases add up to: the drill's RPO and its writes lost."""

    cases: int
    detected: int = 0
    restored: int = 0
    ages: list[float] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)

    def add_loss(self, ctx: DrillContext, label: str, kind: str, n: int, age: float) -> None:
        self.lost[label] = n
        self.ages.append(age)
        ctx.metric("writes_lost", sum(self.lost.values()))
        key = f"{kind}_writes_lost"
        ctx.metric(key, ctx.metrics.get(key, 0) + n)


class _FileCase:
    """A component with a path: a sandbox directory."""

    def __init__(self, plan: Plan, comp: Component, work_root: Any) -> None:
        self.comp = comp
        self.label = comp.name
        self.live = component_path(plan, comp)
        self.work = work_root / comp.name
        self.sandbox = self.work / "data"
        self.before: Fingerprint = {}
        self.verified: Verified | None = None

    def steady(self, repos: RepositorySession, primary: str) -> tuple[Step, ...]:
        def readable(ctx: DrillContext) -> None:
            if not self.live.exists():
                raise DrillError(f"{self.label}: live data {self.live} does not exist")
            self.before = fingerprint(self.live)
            ctx.note("files", len(self.before))

        def known_good(ctx: DrillContext) -> None:
            verified = newest_verified(repos.get(primary), self.comp.name)
            if verified is None:
                raise DrillError(
                    f"no verified snapshot of {self.label!r} in {primary!r}: a backup that was "
                    "never restored is not known good, so there is nothing safe to restore"
                )
            self.verified = verified
            ctx.note("snapshot", verified.snapshot.id)

        def copy(ctx: DrillContext) -> None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir(parents=True)
            shutil.copytree(self.live, self.sandbox)

        return (
            Step(f"{self.label} is readable ({self.live})", readable),
            Step(f"{self.label} has a verified snapshot in {primary}", known_good),
            Step(f"copy {self.label} into a drill sandbox", copy),
        )

    def corrupt(self, ctx: DrillContext) -> None:
        files = sorted(self.before)
        if not files:
            raise DrillError(f"{self.label}: no files to corrupt")
        k_del = max(1, math.ceil(len(files) * DELETE_SHARE))
        k_alt = max(1, math.ceil(len(files) * ALTER_SHARE)) if len(files) > 1 else 0
        chosen = ctx.rng.sample(files, min(len(files), k_del + k_alt))
        deleted, altered = chosen[:k_del], chosen[k_del:]
        for rel in deleted:
            (self.sandbox / rel).unlink()
        for rel in altered:
            p = self.sandbox / rel
            data = bytearray(p.read_bytes() or b"\0")
            pos = ctx.rng.randrange(len(data))
            data[pos] ^= 1 << ctx.rng.randrange(8)
            p.write_bytes(bytes(data))
        ctx.metric("files_deleted", ctx.metrics.get("files_deleted", 0) + len(deleted))
        ctx.metric("files_altered", ctx.metrics.get("files_altered", 0) + len(altered))
        ctx.note("deleted", deleted)
        ctx.note("altered", altered)

    def detect(self, ctx: DrillContext, repos: RepositorySession, primary: str) -> int:
        verified = self._verified()
        damage = diff(verified.fingerprint, fingerprint(self.sandbox))
        ctx.note("snapshot", verified.snapshot.id)
        ctx.note("missing", list(damage.removed))
        ctx.note("altered", list(damage.changed))
        ctx.metric(
            "files_damaged_detected", ctx.metrics.get("files_damaged_detected", 0) + damage.damaged
        )
        return damage.damaged

    def recover(
        self, ctx: DrillContext, repos: RepositorySession, primary: str, totals: _Totals
    ) -> dict[str, Any]:
        verified = self._verified()
        restored = self.work / "restored"
        shutil.rmtree(restored, ignore_errors=True)
        result = restore(repos.get(primary), verified.snapshot, restored)
        shutil.rmtree(self.sandbox)
        restored.rename(self.sandbox)
        ctx.note("restored_files", result.files)
        lost = diff(verified.fingerprint, self.before)
        age = max(
            0.0, (ctx.marker("fault_injected") or 0.0) - verified.snapshot.datetime.timestamp()
        )
        totals.add_loss(ctx, self.label, "file", lost.total, age)
        return {
            "component": self.comp.name,
            "snapshot": verified.snapshot.id,
            "duration_s": result.duration_s,
            "writes_lost": lost.total,
        }

    def check(self, ctx: DrillContext, repos: RepositorySession, primary: str) -> None:
        d = diff(self._verified().fingerprint, fingerprint(self.sandbox))
        if d.total:
            raise DrillError(
                f"{self.label}: restored data differs from the verified snapshot: "
                f"{len(d.changed)} changed, {len(d.removed)} missing, {len(d.added)} extra"
            )

    def cleanup(self, repos: RepositorySession, primary: str) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def _verified(self) -> Verified:
        if self.verified is None:
            raise DrillError(f"{self.label}: no verified snapshot was found")
        return self.verified


class _VectorCase:
    """One collection of a vector store: a sandbox collection in the same engine."""

    def __init__(
        self, comp: VectorStoreModel, collection: str, engines: Engines, *, live: bool = False
    ) -> None:
        self.comp = comp
        self.collection = collection
        self.label = f"{comp.name}/{collection}"
        self.engines = engines
        #: ``--live``: the live collection is damaged and repaired in place
        self.live = live
        self.sandbox = collection if live else temp_name(f"drill_{collection}")
        self.before: dict[str, bytes] = {}
        self.opened: Opened | None = None
        self.damaged = self.repaired = False

    @property
    def store(self) -> Any:
        return self.engines.get(str(self.comp.engine))

    def steady(self, repos: RepositorySession, primary: str) -> tuple[Step, ...]:
        def readable(ctx: DrillContext) -> None:
            self.before = collection_fingerprint(self.store, self.collection)
            if not self.before:
                raise DrillError(f"{self.label} has no records to drill on")
            ctx.note("records", len(self.before))

        def known_good(ctx: DrillContext) -> None:
            # before the sandbox is built: without a known-good snapshot of the live
            # collection's shape the drill cannot recover, however long it copies
            repo = repos.get(primary)
            snap = newest_verified_vectors(repo, self.comp.name, self.collection)
            if snap is None:
                raise DrillError(
                    f"no verified snapshot of {self.label!r} in {primary!r}: a backup that was "
                    f"never restored is not known good (run `drkit verify {self.comp.name}`)"
                )
            opened = open_snapshot(repo, snap)
            live = self.store.describe(self.collection)
            if not same_shape(opened.manifest.config, live):
                raise DrillError(
                    f"{self.label}: the live vectors ({_shape(live)}) are not those of the "
                    f"verified snapshot {snap.short_id} ({_shape(opened.manifest.config)}): "
                    "the collection was re-embedded since; restoring it would bring back "
                    f"the old model's vectors (snapshot and verify: `drkit backup "
                    f"{self.comp.name}`, `drkit verify {self.comp.name}`)"
                )
            self.opened = opened
            ctx.note("snapshot", snap.id)

        def copy(ctx: DrillContext) -> None:
            cleaned = clean_leftovers(self.store, f"drill_{self.collection}")
            if cleaned:
                ctx.note("removed_leftovers", cleaned)
            copy_collection(self.store, self.collection, self.store, self.sandbox)
            ctx.note("sandbox", self.sandbox)

        steps = [
            Step(f"{self.label} is readable ({self.store.url})", readable),
            Step(f"{self.label} has a verified snapshot of its shape in {primary}", known_good),
        ]
        if not self.live:
            steps.append(Step(f"copy {self.label} into a sandbox collection", copy))
        return tuple(steps)

    def corrupt(self, ctx: DrillContext) -> None:
        self.damaged = True
        deleted, altered = corrupt_collection(self.store, self.sandbox, list(self.before), ctx.rng)
        ctx.metric("records_deleted", ctx.metrics.get("records_deleted", 0) + len(deleted))
        ctx.metric("vectors_overwritten", ctx.metrics.get("vectors_overwritten", 0) + len(altered))
        ctx.note("deleted", deleted[:LISTED])
        ctx.note("overwritten", altered[:LISTED])

    def detect(self, ctx: DrillContext, repos: RepositorySession, primary: str) -> int:
        repo = repos.get(primary)
        opened = self._opened()
        d = diff_collection(repo, opened, self.store, self.sandbox)
        ctx.note("snapshot", opened.snapshot.id)
        ctx.note("records", d.records)
        ctx.note("missing", d.missing[:LISTED])
        ctx.note("altered", d.altered[:LISTED])
        ctx.metric(
            "records_damaged_detected", ctx.metrics.get("records_damaged_detected", 0) + d.damaged
        )
        return d.damaged

    def recover(
        self, ctx: DrillContext, repos: RepositorySession, primary: str, totals: _Totals
    ) -> dict[str, Any]:
        opened = self._opened()
        if self.live:  # as `drkit restore --replace`: beside it, verified, swapped in
            swapped = replace_collection(repos.get(primary), opened, self.store, self.collection)
            self.repaired = True
            ctx.note("replaced", swapped.to_json())
            rep: RestoreReport | ReplaceReport = swapped
        else:
            self.store.drop(self.sandbox)
            rep = restore_collection(repos.get(primary), opened, self.store, self.sandbox)
        ctx.note("restored_records", rep.records)
        lost = fingerprint_diff(snapshot_fingerprint(opened), self.before)
        age = _age(ctx, opened.snapshot.datetime.timestamp())
        totals.add_loss(ctx, self.label, "record", lost.total, age)
        return {
            "component": self.comp.name,
            "collection": self.collection,
            "snapshot": opened.snapshot.id,
            "duration_s": rep.duration_s,
            "writes_lost": lost.total,
        }

    def check(self, ctx: DrillContext, repos: RepositorySession, primary: str) -> None:
        opened = self._opened()
        d = diff_collection(repos.get(primary), opened, self.store, self.sandbox)
        ctx.note("tolerated", d.tolerated)
        if d.total or d.records != opened.manifest.records:
            raise DrillError(
                f"{self.label}: the restored collection differs from the verified snapshot: "
                f"{d.records} records (snapshot {opened.manifest.records}), "
                f"{len(d.altered)} altered, {len(d.missing)} missing, {len(d.extra)} extra"
            )

    def cleanup(self, repos: RepositorySession, primary: str) -> None:
        if not self.live:
            self.store.drop(self.sandbox, missing_ok=True)
        elif self.damaged and not self.repaired:  # never leave the live collection damaged
            replace_collection(repos.get(primary), self._opened(), self.store, self.collection)
            self.repaired = True

    def _opened(self) -> Opened:
        if self.opened is None:
            raise DrillError(f"{self.label}: no verified snapshot was found")
        return self.opened


def _shape(config: CollectionConfig) -> str:
    return ", ".join(f"{v.column}: {v.dimension}-d {v.metric.value}" for v in config.vectors)


def _age(ctx: DrillContext, snapshot_at: float) -> float:
    """The snapshot's age at the fault: the window of writes its restore loses."""
    return max(0.0, (ctx.marker("fault_injected") or 0.0) - snapshot_at)


def build(stack: Stack, options: DrillOptions) -> Drill:
    plan = stack.plan
    comps = pick_components(plan, options.subject)
    tiers = [plan.tiers[c.tier] for c in comps if c.tier]
    work = stack.scratch / f"data-corruption-{secrets.token_hex(4)}"
    repos = stack.session()
    engines = Engines()
    cases: list[_FileCase | _VectorCase] = []
    for comp in comps:
        if isinstance(comp, VectorStoreModel):
            names = list(comp.collections)
            if not names:  # every collection of the store: the engine is asked now
                names = collections_of(comp, engines.get(str(comp.engine)))
            cases += [_VectorCase(comp, n, engines, live=options.live) for n in names]
        else:
            cases.append(_FileCase(plan, comp, work))
    steps = _Steps(cases, repos, plan.repositories.primary.name, work)
    labels = ", ".join(c.label for c in cases)
    return Drill(
        scenario="data-corruption",
        description=f"{labels}: records/files deleted and altered, restored from the newest "
        "verified snapshots",
        steady_state=tuple(s for case in cases for s in case.steady(repos, steps.primary)),
        fault=tuple(
            Step(f"delete and alter a seeded share of {case.label}", case.corrupt) for case in cases
        ),
        recovery=(*(steps.detect(c) for c in cases), *(steps.recover(c) for c in cases)),
        verify=tuple(steps.verify(c) for c in cases),
        rollback=(
            Step("remove the sandboxes", steps.cleanup),
            Step("close the repository and the engines", lambda ctx: _close(repos, engines)),
        ),
        rto_target_s=min((t.rto for t in tiers), default=None),
        rpo_target_s=min((t.rpo for t in tiers), default=None),
    )


class _Steps:
    """The recovery, verify and rollback steps over every case, and their running totals."""

    def __init__(
        self,
        cases: list[_FileCase | _VectorCase],
        repos: RepositorySession,
        primary: str,
        work: Path,
    ) -> None:
        self.cases = cases
        self.repos = repos
        self.primary = primary
        self.work = work
        self.totals = _Totals(len(cases))

    def detect(self, case: _FileCase | _VectorCase) -> Step:
        totals = self.totals

        def run(ctx: DrillContext) -> None:
            damaged = case.detect(ctx, self.repos, self.primary)
            if not damaged:
                raise DrillError(
                    f"{case.label}: the fingerprint shows no damage: corruption went undetected"
                )
            totals.detected += 1
            if totals.detected == totals.cases:
                ctx.mark("detected", f"damage found in {totals.cases} component(s)")

        return Step(f"detect {case.label} by fingerprint against the newest verified snapshot", run)

    def recover(self, case: _FileCase | _VectorCase) -> Step:
        totals = self.totals

        def run(ctx: DrillContext) -> None:
            test = case.recover(ctx, self.repos, self.primary, totals)
            ctx.note("restore_tests", [test])
            totals.restored += 1
            if totals.restored == totals.cases:
                ctx.mark("recovered", f"restored {totals.cases} component(s)")
                lost = ", ".join(f"{n} in {label}" for label, n in totals.lost.items())
                ctx.record_rpo(
                    max(totals.ages, default=0.0),
                    f"{sum(totals.lost.values())} writes since the verified snapshots are "
                    f"lost ({lost})",
                )
            ctx.metric("restore_s", round(ctx.metrics.get("restore_s", 0) + test["duration_s"], 3))

        return Step(f"restore {case.label} from the newest verified snapshot", run)

    def verify(self, case: _FileCase | _VectorCase) -> Step:
        return Step(
            f"{case.label} is whole: equal to the verified snapshot",
            lambda ctx: case.check(ctx, self.repos, self.primary),
        )

    def cleanup(self, ctx: DrillContext) -> None:
        errors = []
        for case in self.cases:
            try:
                case.cleanup(self.repos, self.primary)
            except Exception as exc:  # every sandbox is tried; the first error is reported
                errors.append(f"{case.label}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)
        if errors:
            raise DrillError("; ".join(errors))


def _close(repos: RepositorySession, engines: Engines) -> None:
    repos.close()
    engines.close()


SCENARIO = Scenario(
    name="data-corruption",
    summary="vector collections and data files are deleted and altered; detected by "
    "fingerprint, restored from the newest verified snapshot, checked whole",
    cadence="restore_test",
    unsupported=unsupported,
    build=build,
)
