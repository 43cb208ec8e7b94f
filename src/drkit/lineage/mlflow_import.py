"""``drkit model import mlflow``: an MLflow model registry into drkit's registry and lineage.

Read through MLflow's own client (``MlflowClient``, the ``mlflow`` extra) at any tracking
URI (``http://127.0.0.1:5000`` for an ``mlflow server``, ``sqlite:///mlflow.db``):

- every registered model (or the ones named) and each of its versions, oldest first,
  becomes an immutable drkit version (``source: mlflow``, registered at the MLflow
  version's creation time): its description, its tags plus ``mlflow.source`` and
  ``mlflow.run_id``, the upstream model per provider from tags ``drkit.upstream.PROVIDER``
  (what a gateway target following an alias sends), and as ``trained_on`` the datasets its
  run logged as inputs (``mlflow.log_input``: name and digest);
- each alias becomes a ledger entry with action ``import`` (MLflow keeps no alias
  history: drkit's ledger starts at the import and grows from there).

Idempotent: a version imported before is skipped, an alias already naming the version is
left alone. A version drkit registered itself under the same label is never replaced
(skipped, with the reason); a model name drkit cannot hold is skipped, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drkit.connectors.mlflow import all_models, open_client
from drkit.errors import DrkitError, UsageError
from drkit.lineage.registry import DatasetRef, Registry, check_name, check_version

UPSTREAM_TAG = "drkit.upstream."


@dataclass
class ImportResult:
    tracking_uri: str
    versions: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "imported_versions": self.versions,
            "imported_aliases": self.aliases,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
        }


def _client(tracking_uri: str) -> Any:
    return open_client(tracking_uri, "drkit model import mlflow")


def _datasets(client: Any, run_id: str | None) -> list[DatasetRef]:
    if not run_id:
        return []
    run = client.get_run(run_id)
    inputs = getattr(run, "inputs", None)
    out = []
    for di in getattr(inputs, "dataset_inputs", None) or ():
        ds = di.dataset
        out.append(DatasetRef(str(ds.name), str(ds.digest), None))
    return out


def import_mlflow(
    registry: Registry, tracking_uri: str, models: list[str] | None = None
) -> ImportResult:
    """Import ``models`` (default: every registered model) from the MLflow registry at
    ``tracking_uri``; raises DrkitError (exit 1) when MLflow cannot be read."""
    client = _client(tracking_uri)
    result = ImportResult(tracking_uri)
    try:
        found = list(all_models(client))
    except Exception as exc:  # MlflowException, connection errors: translated here
        raise DrkitError(
            f"cannot read the MLflow registry at {tracking_uri}: {type(exc).__name__}: "
            f"{str(exc)[:200]}",
            hint="check --tracking-uri and that the MLflow server is up",
        ) from exc
    by_name = {rm.name: rm for rm in found}
    for name in models or ():
        if name not in by_name:
            raise UsageError(
                f"MLflow at {tracking_uri} has no registered model {name!r}",
                hint="registered models: " + (", ".join(sorted(by_name)) or "none"),
            )
    for rm in found:
        if models and rm.name not in models:
            continue
        try:
            check_name("model", rm.name)
        except UsageError as exc:
            result.skipped.append({"what": rm.name, "why": str(exc)})
            continue
        _import_model(client, registry, rm, result)
    return result


def _import_model(client: Any, registry: Registry, rm: Any, result: ImportResult) -> None:
    name = rm.name
    versions = sorted(
        client.search_model_versions(f"name='{name}'"), key=lambda v: int(str(v.version))
    )
    for mv in versions:
        label = str(mv.version)
        ref = f"{name}@{label}"
        check_version(label)
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        upstream = {
            k[len(UPSTREAM_TAG) :]: v for k, v in tags.items() if k.startswith(UPSTREAM_TAG)
        }
        tags = {k: v for k, v in tags.items() if not k.startswith(UPSTREAM_TAG)}
        if mv.source:
            tags["mlflow.source"] = str(mv.source)
        if mv.run_id:
            tags["mlflow.run_id"] = str(mv.run_id)
        if registry.has_version(name, label):
            mine = registry.version(name, label)
            if mine.source == "mlflow":
                result.unchanged.append(ref)
            else:
                result.skipped.append(
                    {"what": ref, "why": "drkit registered its own version with this label"}
                )
            continue
        registry.register(
            name,
            label,
            upstream=upstream,
            trained_on=_datasets(client, mv.run_id),
            tags=tags,
            description=str(mv.description or ""),
            source="mlflow",
            at=int(mv.creation_timestamp) / 1000.0 if mv.creation_timestamp else None,
        )
        result.versions.append(ref)
    aliases = rm.aliases or {}
    if isinstance(aliases, list):  # older clients: [RegisteredModelAlias(alias, version)]
        aliases = {a.alias: a.version for a in aliases}
    current = registry.aliases_at(name) if name in registry.models() else {}
    for alias, version in sorted(aliases.items()):
        label = f"{name}:{alias}"
        if current.get(alias) == str(version):
            result.unchanged.append(label)
            continue
        if not registry.has_version(name, str(version)):
            result.skipped.append({"what": label, "why": f"names version {version}, not imported"})
            continue
        registry.set_alias(
            name,
            alias,
            str(version),
            reason=f"imported from MLflow {result.tracking_uri} (MLflow keeps no alias history)",
            action="import",
        )
        result.aliases.append(f"{label} -> {version}")
