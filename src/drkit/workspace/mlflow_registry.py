"""MLflow model registries: backed up into the repository, restored into another MLflow
(docs/models.md#back-up-and-restore-an-mlflow-registry, docs/repository-format.md).

A snapshot of an ``mlflow_registries`` component (kind ``mlflow``) holds
``registry.json`` — the canonical JSON (sorted keys) of every registered model: name,
description, tags, aliases, and each version's number, source, run id, tags,
description and status — and, under ``artifacts/<model>/<version>/``, the artifacts of
every READY version as downloaded through MLflow's client (the model name
percent-encoded). Artifacts are plain files in the snapshot tree, so an unchanged model
file is stored once however many snapshots (or versions) hold it. The restore is
:mod:`drkit.workspace.mlflow_restore`.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from drkit.connectors import mlflow as ml
from drkit.errors import MlflowError
from drkit.plan.models import Component, MlflowRegistry, Plan
from drkit.repository import Repository, Snapshot, snapshot_files

if TYPE_CHECKING:
    from drkit.workspace.backup_jobs import BackupJob
    from drkit.workspace.protect import BackupResult

KIND = "mlflow"
DOC = "registry.json"
FORMAT = "drkit.mlflow-registry/1"


def is_mlflow(comp: object) -> bool:
    return isinstance(comp, MlflowRegistry)


def artifact_dir(model: str, version: int) -> str:
    """Where a version's artifacts live in a registry snapshot's tree."""
    return f"artifacts/{quote(model, safe='')}/{version}"


def _download(client: Any, uri: str, models: list[dict[str, Any]], stage: Path) -> dict[str, Path]:
    """Download every READY version's artifacts under ``stage``; records each version's
    ``artifacts`` entry in ``models`` and returns snapshot path -> local file."""
    files: dict[str, Path] = {}
    for i, m in enumerate(models):
        for v in m["versions"]:
            v["artifacts"] = None
            if v["status"] != "READY":
                continue  # a failed or pending registration has no artifacts to read
            dest = stage / str(i) / str(v["version"])
            dest.mkdir(parents=True)
            got = ml.download_version(client, uri, m["name"], v["version"], dest)
            base = f"{artifact_dir(m['name'], v['version'])}/{got.name}"
            if got.is_dir():
                found = {
                    f"{base}/{p.relative_to(got).as_posix()}": p
                    for p in sorted(got.rglob("*"))
                    if p.is_file()
                }
            else:
                found = {base: got}
            files |= found
            v["artifacts"] = {
                "name": got.name,
                "dir": got.is_dir(),
                "files": len(found),
                "bytes": sum(p.stat().st_size for p in found.values()),
            }
    return files


def registry_doc(uri: str, models: list[dict[str, Any]]) -> bytes:
    """The canonical ``registry.json`` of a snapshot: same registry, same bytes."""
    doc = {"format": FORMAT, "tracking_uri": ml.public_uri(uri), "models": models}
    return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def backup_registry(
    repo: Repository,
    component: str,
    uri: str,
    *,
    models: Sequence[str] = (),
    allow_empty: bool = False,
    tags: Sequence[str] = (),
) -> Snapshot | None:
    """Snapshot the MLflow registry at ``uri`` (``models``: only those); None when it has
    no registered model to back up. A listed model the registry lacks fails (exit 1)
    unless ``allow_empty``."""
    client = ml.open_client(uri)
    found = ml.read_registry(client, uri, list(models) or None)
    names = [m["name"] for m in found]
    missing = [m for m in models if m not in names]
    if missing and not allow_empty:
        raise MlflowError(
            f"{component}: MLflow at {ml.public_uri(uri)} has no registered model "
            f"{', '.join(map(repr, missing))}",
            hint="check the component's models: in the plan, or set allow_empty: true",
        )
    if not found:
        return None
    with tempfile.TemporaryDirectory(prefix="drkit-mlflow-") as tmp:
        local = _download(client, uri, found, Path(tmp))
        with contextlib.ExitStack() as stack:
            data = {path: _mapped(stack, p) for path, p in local.items()}
            data[DOC] = registry_doc(uri, found)
            versions = [v for m in found for v in m["versions"]]
            stored = sum(int((v["artifacts"] or {}).get("bytes", 0)) for v in versions)
            return snapshot_files(
                repo,
                component,
                data,
                source=ml.public_uri(uri),
                kind=KIND,
                tags=tuple(tags),
                meta={
                    "models": len(found),
                    "versions": len(versions),
                    "aliases": sum(len(m["aliases"]) for m in found),
                    "artifact_files": len(local),
                    "artifact_bytes": stored,
                },
            )


def _mapped(stack: contextlib.ExitStack, path: Path) -> bytes:
    """The file's bytes without reading them onto the heap: a read-only mmap (the staging
    copy is drkit's own, nothing truncates it while mapped); b"" for an empty file."""
    size = path.stat().st_size
    if size == 0:
        return b""
    fd = os.open(path, os.O_RDONLY)
    try:
        mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    stack.callback(mm.close)
    return cast(bytes, mm)  # bytes-like: len, slicing and memoryview are all it needs


# --- the hooks of drkit.workspace.protect (backup and restore of any component) --------


def job_for(plan: Plan, comp: Component) -> BackupJob:
    from drkit.workspace.backup_jobs import BackupJob

    assert isinstance(comp, MlflowRegistry)
    where = next((p for p, c in plan.components() if c is comp), None)
    origin = None
    if where is not None:
        loc = plan.locate(*where, "tracking_uri")
        origin = (f"{loc.file}:{loc.line} " if loc.file and loc.line else "") + loc.field
    return BackupJob(
        comp.name,
        "mlflow",
        str(comp.tracking_uri),
        allow_empty=comp.allow_empty,
        origin=origin,
        models=tuple(comp.models),
    )


def run_job(repo: Repository, job: BackupJob, tags: Sequence[str]) -> BackupResult:
    from drkit.workspace.protect import BackupItem, BackupResult

    snap = backup_registry(
        repo,
        job.component,
        job.source,
        models=job.models,
        allow_empty=job.allow_empty,
        tags=tags,
    )
    if snap is None:
        what = "none of the listed models" if job.models else "no registered model"
        return BackupResult(
            job,
            nothing=f"nothing to back up: the MLflow registry at {ml.public_uri(job.source)} "
            f"has {what}",
            nothing_expected=job.allow_empty,
        )
    return BackupResult(job, (BackupItem(job, snap),))
