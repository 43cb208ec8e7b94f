"""drkit's custom OpenLineage facets (their JSON schema: docs/openlineage/drkit-facets.json).

OpenLineage has no facets for model versions or eval results yet (OpenLineage#4035), so
drkit defines three, keyed with the ``drkit_`` prefix the spec asks of custom facets:

- ``drkit_modelVersion`` (dataset facet of ``models/MODEL``): name, version, upstream
  model per provider, the aliases naming it, the training snapshots, source;
- ``drkit_evalResult`` (run facet of an eval run): verdict, scores, eval set and its
  version, drkit's run id, the model version evaluated;
- ``drkit_snapshot`` (dataset facet of a backup's output): the repository snapshot.

Imported only when something is emitted (it needs ``openlineage-python``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet

from drkit.lineage.registry import ModelVersion


def _schema(name: str) -> str:
    from drkit.lineage.openlineage import FACETS_SCHEMA

    return f"{FACETS_SCHEMA}#/$defs/{name}"


@attr.define
class ModelVersionDatasetFacet(DatasetFacet):
    name: str
    version: str
    #: provider -> the upstream model name the gateway sends
    upstream: dict[str, str] = attr.field(factory=dict)
    #: the aliases that name this version when the event is sent
    aliases: list[str] = attr.field(factory=list)
    #: ``DATASET@SNAPSHOT`` of each training snapshot
    trainedOn: list[str] = attr.field(factory=list)
    source: str = "drkit"
    tags: dict[str, str] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return _schema("ModelVersionDatasetFacet")

    @classmethod
    def of(
        cls, v: ModelVersion, aliases: Sequence[str], producer: str
    ) -> dict[str, ModelVersionDatasetFacet]:
        facet = cls(
            name=v.model,
            version=v.version,
            upstream=dict(v.upstream),
            aliases=sorted(aliases),
            trainedOn=[f"{t.dataset}@{t.snapshot}" for t in v.trained_on],
            source=v.source,
            tags=dict(v.tags),
            producer=producer,
        )
        return {"drkit_modelVersion": facet}


@attr.define
class EvalResultRunFacet(RunFacet):
    runId: str
    evalSet: str
    evalSetVersion: str
    #: ``pass`` or ``fail`` (the run's verdict against its thresholds)
    verdict: str
    #: ``mean`` plus any named metrics of the run (higher is better)
    scores: dict[str, float] = attr.field(factory=dict)
    n: int = 0
    errors: int = 0
    passThreshold: float | None = None
    modelVersion: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return _schema("EvalResultRunFacet")

    @classmethod
    def of(cls, summary: Mapping[str, Any], producer: str) -> EvalResultRunFacet:
        """From the data of an ``eval.run`` event (docs/events.md)."""
        scores = {"mean": float(summary.get("mean_score") or 0.0)}
        for name, value in dict(summary.get("metrics") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                scores[str(name)] = float(value)
        passed = summary.get("passed")
        verdict = "pass" if passed is True or summary.get("verdict") == "pass" else "fail"
        version = summary.get("eval_set_version") or summary.get("eval_set_digest") or ""
        threshold = summary.get("pass_threshold")
        model = summary.get("model_version")
        return cls(
            runId=str(summary["run_id"]),
            evalSet=str(summary["eval_set"]),
            evalSetVersion=str(version),
            verdict=verdict,
            scores=scores,
            n=int(summary.get("n") or 0),
            errors=int(summary.get("errors") or 0),
            passThreshold=float(threshold) if threshold is not None else None,
            modelVersion=str(model) if model is not None else None,
            producer=producer,
        )


@attr.define
class SnapshotDatasetFacet(DatasetFacet):
    snapshotId: str
    component: str
    collection: str | None = None
    #: the named version of a versioned dataset (``v3``)
    version: str | None = None
    tags: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema("SnapshotDatasetFacet")
