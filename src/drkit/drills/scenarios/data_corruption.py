"""``data-corruption``: a component's files are deleted and altered in place.

The drill works on a sandbox copy of the component's live directory (a drill must not
destroy the data it protects): the fault deletes and bit-flips a seeded share of the
files; detection compares the sandbox's fingerprint with the newest *verified*
snapshot's (files it holds that are gone or altered); recovery restores that snapshot;
verify checks the result is bit-exact with it. RPO = the writes the restore loses —
files added, changed or removed in the live data since that snapshot, counted — and
their window, the snapshot's age at the fault.

Vector collections: see the extension point in :mod:`drkit.drills.data`.
"""

from __future__ import annotations

import math
import secrets
import shutil
from datetime import UTC, datetime

from drkit.drills.data import (
    VECTOR_SNAPSHOTS_MISSING,
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
from drkit.drills.stack import Stack
from drkit.errors import DrillError, UsageError
from drkit.plan.models import Component, Plan
from drkit.repository import restore

#: share of the files the fault deletes, and the share it alters (at least one each)
DELETE_SHARE = 0.1
ALTER_SHARE = 0.1


def unsupported(plan: Plan) -> str | None:
    if not file_components(plan):
        why = "the plan has no dataset, eval set, eval results or model directory (path)"
        if plan.vector_stores:
            why += f"; {VECTOR_SNAPSHOTS_MISSING}"
        return why
    return None


def pick_component(plan: Plan, name: str | None) -> Component:
    comps = file_components(plan)
    if name is None:
        return comps[0]
    for c in comps:
        if c.name == name:
            return c
    if any(v.name == name for v in plan.vector_stores):
        raise UsageError(f"cannot drill vector store {name!r} yet: {VECTOR_SNAPSHOTS_MISSING}")
    raise UsageError(
        f"the plan has no component {name!r} with a path",
        hint="one of: " + ", ".join(c.name for c in comps),
    )


def build(stack: Stack, options: DrillOptions) -> Drill:
    plan = stack.plan
    comp = pick_component(plan, options.subject)
    tier = plan.tiers[comp.tier] if comp.tier else None
    live = component_path(plan, comp)
    primary = plan.repositories.primary.name
    work = stack.scratch / f"data-corruption-{comp.name}-{secrets.token_hex(4)}"
    sandbox = work / "data"
    state: dict[str, object] = {}
    repos = stack.session()

    def readable(ctx: DrillContext) -> None:
        if not live.exists():
            raise DrillError(f"{comp.name}: live data {live} does not exist")
        state["before"] = fingerprint(live)
        ctx.note("files", len(_fp(state, "before")))

    def copy(ctx: DrillContext) -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        shutil.copytree(live, sandbox)

    def corrupt(ctx: DrillContext) -> None:
        files = sorted(_fp(state, "before"))
        if not files:
            raise DrillError(f"{comp.name}: no files to corrupt")
        k_del = max(1, math.ceil(len(files) * DELETE_SHARE))
        k_alt = max(1, math.ceil(len(files) * ALTER_SHARE)) if len(files) > 1 else 0
        chosen = ctx.rng.sample(files, min(len(files), k_del + k_alt))
        deleted, altered = chosen[:k_del], chosen[k_del:]
        for rel in deleted:
            (sandbox / rel).unlink()
        for rel in altered:
            p = sandbox / rel
            data = bytearray(p.read_bytes() or b"\0")
            pos = ctx.rng.randrange(len(data))
            data[pos] ^= 1 << ctx.rng.randrange(8)
            p.write_bytes(bytes(data))
        ctx.metric("files_deleted", len(deleted))
        ctx.metric("files_altered", len(altered))
        ctx.note("deleted", deleted)
        ctx.note("altered", altered)

    def detect(ctx: DrillContext) -> None:
        verified = newest_verified(repos.get(primary), comp.name)
        if verified is None:
            raise DrillError(
                f"no verified snapshot of {comp.name!r} in {primary!r}: a backup that was "
                "never restored is not known good, so there is nothing safe to restore"
            )
        state["verified"] = verified
        damage = diff(verified.fingerprint, fingerprint(sandbox))
        ctx.note("snapshot", verified.snapshot.id)
        ctx.note("missing", list(damage.removed))
        ctx.note("altered", list(damage.changed))
        if not damage.damaged:
            raise DrillError("the fingerprint shows no damage: corruption went undetected")
        ctx.mark("detected", f"{damage.damaged} files missing or altered")
        ctx.metric("files_damaged_detected", damage.damaged)

    def recover(ctx: DrillContext) -> None:
        verified = _verified(state)
        restored = work / "restored"
        shutil.rmtree(restored, ignore_errors=True)
        result = restore(repos.get(primary), verified.snapshot, restored)
        shutil.rmtree(sandbox)
        restored.rename(sandbox)
        ctx.mark("recovered", f"restored snapshot {verified.snapshot.short_id}")
        ctx.metric("restore_s", result.duration_s)
        ctx.note("restored_files", result.files)
        ctx.note(
            "restore_tests",
            [
                {
                    "component": comp.name,
                    "snapshot": verified.snapshot.id,
                    "duration_s": result.duration_s,
                }
            ],
        )
        fault_at = ctx.marker("fault_injected") or 0.0
        snap_at = verified.snapshot.datetime.timestamp()
        lost = diff(verified.fingerprint, _fp(state, "before"))
        ctx.metric("writes_lost", lost.total)
        ctx.record_rpo(
            max(0.0, fault_at - snap_at),
            f"{lost.total} file writes since snapshot {verified.snapshot.short_id} "
            f"({datetime.fromtimestamp(snap_at, UTC):%Y-%m-%d %H:%M:%SZ}) are lost",
        )

    def bit_exact(ctx: DrillContext) -> None:
        d = diff(_verified(state).fingerprint, fingerprint(sandbox))
        if d.total:
            raise DrillError(
                f"restored data differs from the verified snapshot: {len(d.changed)} changed, "
                f"{len(d.removed)} missing, {len(d.added)} extra"
            )

    return Drill(
        scenario="data-corruption",
        description=f"{comp.kind} {comp.name!r}: files deleted and altered, restored from "
        "the newest verified snapshot",
        steady_state=(
            Step(f"{comp.name} is readable ({live})", readable),
            Step("copy it into a drill sandbox", copy),
        ),
        fault=(Step("delete and bit-flip a seeded share of the files", corrupt),),
        recovery=(
            Step("detect by fingerprint against the newest verified snapshot", detect),
            Step("restore the newest verified snapshot", recover),
        ),
        verify=(Step("restored data is bit-exact with the verified snapshot", bit_exact),),
        rollback=(
            Step("close the repository", lambda ctx: repos.close()),
            Step("remove the sandbox", lambda ctx: shutil.rmtree(work, True)),
        ),
        rto_target_s=tier.rto if tier else None,
        rpo_target_s=tier.rpo if tier else None,
    )


def _fp(state: dict[str, object], key: str) -> Fingerprint:
    value = state[key]
    assert isinstance(value, dict)
    return value


def _verified(state: dict[str, object]) -> Verified:
    value = state.get("verified")
    if not isinstance(value, Verified):
        raise DrillError("no verified snapshot was found")
    return value


SCENARIO = Scenario(
    name="data-corruption",
    summary="a data component's files are deleted and altered; detected by fingerprint, "
    "restored from the newest verified snapshot, checked bit-exact",
    cadence="restore_test",
    unsupported=unsupported,
    build=build,
)
