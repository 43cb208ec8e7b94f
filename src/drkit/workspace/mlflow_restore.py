"""Restore of an MLflow registry snapshot into another MLflow (``drkit restore SNAP --to URI``).

The target must not hold any registered model of the snapshot (refused, exit 2, before
anything is written: a restore never changes an existing model); models of other names
may be there. The snapshot's artifacts are restored from the repository (every blob
verified) and uploaded as the artifacts of one run, ``drkit restore <snapshot>``, in the
target's experiment ``drkit-restore``; then each model is created with its description
and tags, its versions *in order with the same numbers* (each with its tags and
description, its source pointing at the uploaded artifacts, its run id that run's) and
its aliases. A number the source no longer has (a deleted version) or a version that was
not READY is created as a placeholder and deleted at once, so that the numbers after it
stay the same. Then everything is read back and compared with the snapshot, every
version's artifacts downloaded again and compared byte for byte. On any failure the
models created and the run are deleted again: nothing half-restored stays behind.
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.connectors import mlflow as ml
from drkit.errors import DrkitError, MlflowError, MlflowTargetNotEmpty, UsageError
from drkit.plan.models import MlflowRegistry, Plan
from drkit.repository import Repository, Snapshot, read_file, restore
from drkit.workspace.mlflow_registry import DOC, FORMAT, artifact_dir
from drkit.workspace.scratch_test import ScratchCheck, scratch_restore_test

EXPERIMENT = "drkit-restore"
PLACEHOLDER = "drkit-placeholder"


@dataclass(frozen=True, slots=True)
class RegistryRestore:
    snapshot: str
    target: str
    duration_s: float
    dry_run: bool
    #: per model: name, versions created, placeholders (created and deleted), aliases
    models: list[dict[str, Any]]
    not_carried: tuple[str, ...]
    files: int = 0
    bytes: int = 0
    run_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def registry_target(plan: Plan | None, to: str) -> str:
    """The tracking URI ``to`` means: a plan ``mlflow_registries`` component or a URI."""
    comp = next((c for _, c in plan.components() if c.name == to), None) if plan else None
    if isinstance(comp, MlflowRegistry):
        return str(comp.tracking_uri)
    if ml.is_mlflow_uri(to):
        return to
    raise UsageError(
        f"--to {to!r} is neither an MLflow registry of the plan nor an MLflow tracking URI",
        hint="an MLflow registry snapshot restores into an (empty) MLflow: --to "
        "http://HOST:5000, --to sqlite:///path/mlflow.db, or a plan mlflow_registries name",
    )


def load_doc(repo: Repository, snap: Snapshot) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(read_file(repo, snap, DOC))
    if doc.get("format") != FORMAT:
        raise MlflowError(
            f"snapshot {snap.short_id} holds {doc.get('format')!r}, not {FORMAT!r}",
            hint="restore it with the drkit version that wrote it",
        )
    return doc


def not_carried(doc: dict[str, Any]) -> list[str]:
    """What a restore of ``doc`` cannot carry into another MLflow, worked out beforehand."""
    versions = [v for m in doc["models"] for v in m["versions"]]
    out = [
        "runs: the source runs' metrics, params, tags and other artifacts are not carried; "
        "every restored version's run_id names the run drkit makes in the experiment "
        f"{EXPERIMENT!r} to hold its artifacts (its original source and run_id are in the "
        "snapshot's registry.json)",
        "timestamps: MLflow sets the creation and update times at the restore",
    ]
    gaps = sum(_top(m) - len(m["versions"]) for m in doc["models"])
    failed = [v for v in versions if v["status"] != "READY"]
    if gaps or failed:
        out.append(
            f"{gaps + len(failed)} deleted or not READY version number(s): created as "
            "placeholders and deleted again, so that the numbers after them stay the same"
        )
    if any(v.get("model_id") for v in versions):
        out.append("MLflow 3 logged models (a version's model_id): not carried")
    if any(v.get("run_link") for v in versions):
        out.append("run links: they point at the source server, not carried")
    if any(v.get("stage", "None") != "None" for v in versions):
        out.append("stages (deprecated in MLflow; aliases are carried): not carried")
    return out


def _top(m: dict[str, Any]) -> int:
    return max((int(v["version"]) for v in m["versions"]), default=0)


def _plan(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in doc["models"]:
        ready = {int(v["version"]) for v in m["versions"] if v["status"] == "READY"}
        out.append(
            {
                "name": m["name"],
                "versions": sorted(ready),
                "placeholders": [n for n in range(1, _top(m) + 1) if n not in ready],
                "aliases": dict(m["aliases"]),
                "tags": len(m["tags"]),
            }
        )
    return out


def restore_registry(
    repo: Repository,
    snap: Snapshot,
    uri: str,
    *,
    dry_run: bool = False,
    artifact_location: str | None = None,
) -> RegistryRestore:
    """Rebuild the registry of ``snap`` in the MLflow at ``uri`` (see the module's doc).
    ``artifact_location``: where the ``drkit-restore`` experiment keeps its artifacts when
    drkit creates it (default: the server's). ``dry_run``: check the target, write nothing."""
    started = time.monotonic()
    doc = load_doc(repo, snap)
    client = ml.open_client(uri, "drkit restore of an MLflow registry")
    with ml.translated(uri, "list the registered models"):
        existing = {str(rm.name) for rm in ml.all_models(client)}
    clash = sorted(existing & {m["name"] for m in doc["models"]})
    if clash:
        raise MlflowTargetNotEmpty(
            f"MLflow at {ml.public_uri(uri)} already has registered model(s) "
            f"{', '.join(map(repr, clash))}: a restore never changes an existing model",
            hint="restore into an empty MLflow server, or delete those models there first",
        )
    planned = _plan(doc)
    arts = [v["artifacts"] or {} for m in doc["models"] for v in m["versions"]]
    files = sum(int(a.get("files", 0)) for a in arts)
    size = sum(int(a.get("bytes", 0)) for a in arts)
    carried = tuple(not_carried(doc))
    if dry_run:
        return RegistryRestore(
            snap.id, ml.public_uri(uri), 0.0, True, planned, carried, files, size
        )
    with tempfile.TemporaryDirectory(prefix="drkit-mlflow-") as tmp:
        local = Path(tmp) / "snapshot"
        restore(repo, snap, local)  # every blob verified against its hash
        run_id = _write(client, uri, snap, doc, local, artifact_location)
    took = round(time.monotonic() - started, 3)
    return RegistryRestore(
        snap.id, ml.public_uri(uri), took, False, planned, carried, files, size, run_id
    )


def _write(
    client: Any,
    uri: str,
    snap: Snapshot,
    doc: dict[str, Any],
    local: Path,
    artifact_location: str | None,
) -> str:
    # MLflow prints a "View run" link on stdout, where drkit's --json output goes
    with contextlib.redirect_stdout(io.StringIO()):
        return _write_quietly(client, uri, snap, doc, local, artifact_location)


def _write_quietly(
    client: Any,
    uri: str,
    snap: Snapshot,
    doc: dict[str, Any],
    local: Path,
    artifact_location: str | None,
) -> str:
    created: list[str] = []
    run_id: str | None = None
    try:
        with ml.translated(uri, "create the restore run"):
            exp = client.get_experiment_by_name(EXPERIMENT)
            if exp is not None:
                exp_id = exp.experiment_id
            else:
                exp_id = client.create_experiment(EXPERIMENT, artifact_location=artifact_location)
            run = client.create_run(
                exp_id,
                run_name=f"drkit restore {snap.short_id}",
                tags={"drkit.snapshot": snap.id, "drkit.source": doc["tracking_uri"]},
            )
            run_id = run.info.run_id
            needs = any(p["placeholders"] for p in _plan(doc))
            placeholder = _placeholder(client, run_id, run.info.artifact_uri, local, needs)
        for i, m in enumerate(doc["models"]):
            with ml.translated(uri, f"restore registered model {m['name']!r}"):
                client.create_registered_model(
                    m["name"], tags=m["tags"], description=m["description"] or None
                )
                created.append(m["name"])
                _versions(client, run_id, run.info.artifact_uri, i, m, local, placeholder)
                for alias, version in m["aliases"].items():
                    client.set_registered_model_alias(m["name"], alias, str(version))
        with ml.translated(uri, "check the restored registry"):
            _check(client, uri, doc, local)
            client.set_terminated(run_id)
    except BaseException as exc:
        left = _undo(client, created, run_id)
        if not isinstance(exc, Exception):  # Ctrl-C: undone, then interrupted
            raise
        err = exc if isinstance(exc, DrkitError) else ml.translate(exc, uri, "restore")
        gone = f"could not remove {', '.join(left)}" if left else "removed what it had created"
        err.message = f"{err.message} (the restore {gone})"
        if err is exc:
            raise
        raise err from exc
    return run_id


def _placeholder(client: Any, run_id: str, artifact_uri: str, local: Path, needed: bool) -> str:
    """The source of placeholder versions: one small file in the restore run."""
    if not needed:
        return ""
    note = local.parent / f"{PLACEHOLDER}.txt"
    note.write_text("drkit: a placeholder that keeps MLflow's version numbers; deleted.\n")
    client.log_artifact(run_id, str(note), PLACEHOLDER)
    return f"{artifact_uri}/{PLACEHOLDER}/{note.name}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "model"


def _versions(
    client: Any,
    run_id: str,
    artifact_uri: str,
    index: int,
    m: dict[str, Any],
    local: Path,
    placeholder: str,
) -> None:
    by_number = {int(v["version"]): v for v in m["versions"]}
    for n in range(1, _top(m) + 1):
        v = by_number.get(n)
        if v is None or v["status"] != "READY":
            mv = client.create_model_version(
                m["name"], placeholder, run_id=run_id, await_creation_for=0
            )
            _same_number(m["name"], n, mv)
            client.delete_model_version(m["name"], str(n))
            continue
        source = placeholder
        art = v.get("artifacts")
        if art:
            here = local / artifact_dir(m["name"], n) / art["name"]
            dest = f"{index:04d}-{_safe(m['name'])}/{n}"
            if art["dir"]:
                client.log_artifacts(run_id, str(here), f"{dest}/{art['name']}")
            else:
                client.log_artifact(run_id, str(here), dest)
            source = f"{artifact_uri}/{dest}/{art['name']}"
        mv = client.create_model_version(
            m["name"],
            source,
            run_id=run_id,
            tags=v["tags"],
            description=v["description"] or None,
            await_creation_for=0,
        )
        _same_number(m["name"], n, mv)


def _same_number(name: str, n: int, mv: Any) -> None:
    if int(str(mv.version)) != n:
        raise MlflowError(
            f"MLflow numbered the restored version {mv.version} of {name!r}, expected {n}",
            hint="restore into an MLflow where the model never existed (a deleted registered "
            "model may leave its numbers behind)",
        )


def _comparable(models: list[dict[str, Any]]) -> list[Any]:
    return [
        (
            m["name"],
            m["description"],
            m["tags"],
            m["aliases"],
            [
                (v["version"], v["tags"], v["description"])
                for v in m["versions"]
                if v["status"] == "READY"
            ],
        )
        for m in models
    ]


def _check(client: Any, uri: str, doc: dict[str, Any], local: Path) -> None:
    """Read the restored registry back: metadata as in the snapshot, artifacts the same
    bytes (downloaded again through MLflow)."""
    names = [m["name"] for m in doc["models"]]
    got = ml.read_registry(client, uri, names)
    if _comparable(got) != _comparable(doc["models"]):
        raise MlflowError(
            f"the restored registry at {ml.public_uri(uri)} differs from the snapshot "
            "(another writer at work?)"
        )
    with tempfile.TemporaryDirectory(prefix="drkit-mlflow-check-") as tmp:
        for m in doc["models"]:
            for v in m["versions"]:
                art = v.get("artifacts")
                if not art:
                    continue
                dest = Path(tmp) / _safe(m["name"]) / str(v["version"])
                dest.mkdir(parents=True)
                back = ml.download_version(client, uri, m["name"], v["version"], dest)
                mine = local / artifact_dir(m["name"], v["version"]) / art["name"]
                if not _same_tree(mine, back):
                    raise MlflowError(
                        f"the restored artifacts of {m['name']} version {v['version']} "
                        "differ from the snapshot's"
                    )
                shutil.rmtree(dest)


def _same_tree(a: Path, b: Path) -> bool:
    if a.is_file() or b.is_file():
        return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / p, b / p, shallow=False) for p in files_a)


def _undo(client: Any, created: list[str], run_id: str | None) -> list[str]:
    """Delete what a failed restore created; what could not be deleted."""
    left = []
    for name in created:
        try:
            client.delete_registered_model(name)
        except Exception:  # the restore's own error is the one to report
            left.append(f"registered model {name!r}")
    if run_id is not None:
        try:
            client.delete_run(run_id)
        except Exception:
            left.append(f"run {run_id}")
    return left


def restore_test(
    repo: Repository, component: str, scratch: Path, *, mark: bool = True
) -> ScratchCheck:
    """Restore the newest snapshot of ``component`` into a scratch SQLite MLflow store;
    a good one is marked verified. The scratch store is always removed."""

    def rebuild(snap: Snapshot, where: Path) -> tuple[dict[str, Any], list[str]]:
        where.mkdir(parents=True)
        res = restore_registry(
            repo,
            snap,
            f"sqlite:///{where / 'mlflow.db'}",
            artifact_location=(where / "artifacts").as_uri(),
        )
        details = {
            "models": len(res.models),
            "versions": sum(len(m["versions"]) for m in res.models),
            "files": res.files,
            "bytes": res.bytes,
        }
        return details, []

    def describe(d: dict[str, Any]) -> str:
        return f"{d['models']} models, {d['versions']} versions, {d['files']} artifact files"

    return scratch_restore_test(repo, component, scratch, "mlflow", rebuild, describe, mark=mark)
