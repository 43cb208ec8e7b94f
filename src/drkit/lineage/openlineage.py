"""OpenLineage out: backups, model versions and eval runs as standard RunEvents.

drkit sends them with the ``openlineage-python`` client (extra ``lineage``) to the plan's
``lineage.openlineage`` destination: a file (file transport, one JSON event per line) or
an HTTP endpoint (HTTP transport; Marquez and other consumers). docs/models.md#openlineage
lists the jobs, datasets and facets; drkit's own facets are specified in
docs/openlineage/drkit-facets.json (the ``_schemaURL`` of each names its definition there).

Contracts:

- no destination, nothing emitted: :class:`Emitter` ``(None)`` does nothing and never
  imports the client;
- emitting never raises into the caller (a backup or an eval run never fails because of
  lineage): a failure is one ``warning:`` line on stderr and one call of ``on_failure``
  (the workspace records it as a ``lineage.emit_failed`` event); after the first failure
  the emitter sends nothing more (a dead endpoint costs one timeout per command, not one
  per event) and says so in that warning;
- every run gets a START and then one COMPLETE, FAIL or ABORT; every facet carries
  ``_producer`` (:data:`PRODUCER`) and ``_schemaURL``.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drkit import __version__
from drkit.lineage.openlineage_destination import Destination, destination
from drkit.lineage.openlineage_destination import reason as failure_reason

__all__ = ["Destination", "Emitter", "Run", "destination"]

if TYPE_CHECKING:
    from openlineage.client.generated.base import InputDataset, OutputDataset, RunEvent

    from drkit.lineage.registry import AliasChange, ModelVersion, Registry
    from drkit.repository import Snapshot

#: ``producer`` / ``_producer`` of everything drkit emits: drkit's source at this version
PRODUCER = f"https://github.com/drkit-dev/drkit/tree/v{__version__}"
#: the ``$id`` of drkit's facet schemas (docs/openlineage/drkit-facets.json)
FACETS_SCHEMA = (
    f"https://github.com/drkit-dev/drkit/blob/v{__version__}/docs/openlineage/drkit-facets.json"
)
#: the state event that records a failed emission (docs/events.md)
EMIT_FAILED = "lineage.emit_failed"

#: the jobs' ``jobType`` (the JobTypeJobFacet's integration-specific field)
BACKUP, MODEL_REGISTRATION, EVAL = "BACKUP", "MODEL_REGISTRATION", "EVAL"
MODEL_ALIAS = "MODEL_ALIAS"

#: ``on_failure(message, data)``
OnFailure = Callable[[str, dict[str, Any]], None]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Emitter:
    """Sends RunEvents to one destination through an ``OpenLineageClient``."""

    def __init__(
        self,
        dest: Destination | None,
        *,
        on_failure: OnFailure | None = None,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self.dest = dest
        self.on_failure = on_failure
        self.warn = warn
        self._client: Any = None
        #: set by the first failure: nothing more is sent
        self.broken: str | None = None
        #: events sent (a test or a status line may say how many)
        self.sent = 0
        self._checked = False

    @property
    def enabled(self) -> bool:
        return self.dest is not None and self.broken is None

    @property
    def namespace(self) -> str:
        return self.dest.namespace if self.dest is not None else ""

    def _open(self) -> Any:
        from openlineage.client import OpenLineageClient

        dest = self.dest
        assert dest is not None
        if dest.file is not None:
            from openlineage.client.transport.file import FileConfig, FileTransport

            dest.file.parent.mkdir(parents=True, exist_ok=True)
            transport: Any = FileTransport(FileConfig(log_file_path=str(dest.file), append=True))
        else:
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            auth: dict[str, str] = {}
            if dest.api_key_env is not None:
                import os

                key = os.environ.get(dest.api_key_env)
                if not key:
                    raise LookupError(f"the variable {dest.api_key_env} is not set")
                auth = {"type": "api_key", "apiKey": key}
            config = {
                "url": dest.url,
                "endpoint": dest.endpoint,
                "timeout": dest.timeout,
                "auth": auth,
                # a short retry: a backup waits for a dead lineage server only so long
                "retry": {"total": 2, "connect": 2, "read": 1, "backoff_factor": 0.2},
            }
            transport = HttpTransport(HttpConfig.from_dict(config))
        # the client would add a sourceCodeLocation facet of whatever git repository the
        # working directory is in: not drkit's job's code
        facets = {"source_code_location": {"disabled": True}}
        return OpenLineageClient(transport=transport, config={"facets": facets})

    def usable(self, job: str) -> bool:
        """Whether events are sent (the first call also checks that the client is
        installed: a missing one is a failure like any other)."""
        if not self.enabled:
            return False
        if not self._checked:
            self._checked = True
            if importlib.util.find_spec("openlineage") is None:
                missing = "openlineage-python is not installed (pip install 'drkit[lineage]')"
                self._failed(job, "START", None, missing)
        return self.enabled

    def emit(self, event: RunEvent) -> bool:
        """Send one event; False (and warned once) when it could not be sent."""
        if not self.enabled:
            return False
        kind = event.eventType.value if event.eventType is not None else "event"
        try:
            if self._client is None:
                self._client = self._open()
            self._client.emit(event)
        except Exception as exc:  # any transport error: lineage never fails the caller
            self._failed(event.job.name, kind, str(event.run.runId), failure_reason(exc))
            return False
        self.sent += 1
        return True

    def _failed(self, job: str, kind: str, run_id: str | None, reason: str) -> None:
        assert self.dest is not None
        self.broken = reason
        where = self.dest.describe()
        message = (
            f"OpenLineage: could not send {kind} of {job} to {where}: {reason}; "
            "this command sends no more lineage events"
        )
        self.warn(f"warning: {message}")
        if self.on_failure is not None:
            data = {
                "destination": where,
                "error": reason,
                "job": job,
                "event_type": kind,
                "run_id": run_id,
            }
            try:
                self.on_failure(message, data)
            except Exception as exc:  # the state may be what is down
                self.warn(f"warning: could not record the lineage failure: {failure_reason(exc)}")

    # --- runs ----------------------------------------------------------------------------

    def start(
        self,
        job: str,
        job_type: str,
        *,
        run_id: uuid.UUID | None = None,
        inputs: Sequence[InputDataset] = (),
        description: str | None = None,
    ) -> Run:
        """Emit the START of a new run of ``job``; end it with the returned :class:`Run`."""
        run = Run(self, job, job_type, run_id or uuid.uuid4(), list(inputs), description)
        if self.usable(job):
            run.emit("START")
        return run

    @contextmanager
    def running(self, job: str, job_type: str, **kwargs: Any) -> Iterator[Run]:
        """:meth:`start`, and :meth:`Run.failing` around the block; a block that did not
        end the run ends it COMPLETE."""
        run = self.start(job, job_type, **kwargs)
        with run.failing():
            yield run
        if not run.ended:
            run.complete()

    # --- drkit's facts -------------------------------------------------------------------

    def dataset(
        self, name: str, version: str | None = None, facets: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The namespace, name and facets of one drkit dataset (a ``version`` facet when
        versioned): the keyword arguments of an Input/OutputDataset."""
        from openlineage.client.facet_v2 import dataset_version_dataset

        out: dict[str, Any] = dict(facets or {})
        if version is not None:
            out["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=version, producer=PRODUCER
            )
        return {"namespace": self.namespace, "name": name, "facets": out}

    def snapshot_output(
        self, snapshot: Snapshot, collection: str | None = None, records: int | None = None
    ) -> OutputDataset:
        """A backup's output: the component (``COMPONENT/COLLECTION`` for a vector store)
        at the snapshot's id, with drkit's snapshot facet and output statistics."""
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats
        from openlineage.client.generated.base import OutputDataset

        from drkit.lineage import openlineage_facets as ol_facets

        summary = snapshot.summary
        name = snapshot.component + (f"/{collection}" if collection else "")
        facet = ol_facets.SnapshotDatasetFacet(
            snapshotId=snapshot.id,
            component=snapshot.component,
            collection=collection,
            version=snapshot.meta.get("version"),
            tags=list(snapshot.tags),
            producer=PRODUCER,
        )
        statistics = stats.OutputStatisticsOutputDatasetFacet(
            rowCount=int(records) if records is not None else None,
            size=int(summary["bytes"]) if "bytes" in summary else None,
            fileCount=int(summary["files"]) if "files" in summary else None,
            producer=PRODUCER,
        )
        return OutputDataset(
            **self.dataset(name, snapshot.id, {"drkit_snapshot": facet}),
            outputFacets={"outputStatistics": statistics},
        )

    def model_registered(self, version: ModelVersion, aliases: Sequence[str] = ()) -> None:
        """START and COMPLETE of ``model.register.MODEL``: inputs the training snapshots,
        outputs the model version (and its artifacts snapshot)."""
        if not self.enabled:
            return
        from openlineage.client.generated.base import InputDataset, OutputDataset

        from drkit.lineage import openlineage_facets as ol_facets

        inputs = [InputDataset(**self.dataset(t.dataset, t.snapshot)) for t in version.trained_on]
        facet = ol_facets.ModelVersionDatasetFacet.of(version, aliases, PRODUCER)
        outputs = [OutputDataset(**self.dataset(f"models/{version.model}", version.version, facet))]
        if version.artifacts and version.artifacts_component:
            outputs.append(
                OutputDataset(**self.dataset(version.artifacts_component, version.artifacts))
            )
        seed = f"{self.namespace}/{version.ref}/{version.event_id}"
        with self.running(
            f"model.register.{version.model}",
            MODEL_REGISTRATION,
            run_id=uuid.uuid5(uuid.NAMESPACE_URL, seed),
            inputs=inputs,
            description=version.description or None,
        ) as run:
            run.complete(outputs=outputs)

    def alias_moved(self, registry: Registry, change: AliasChange) -> None:
        """START and COMPLETE of ``model.alias.MODEL``: input the version the alias named
        before (if any), output the version it names now, each with its
        ``drkit_modelVersion`` facet listing the aliases that name it after the move."""
        job = f"model.alias.{change.model}"
        if not self.usable(job):
            return
        from openlineage.client.generated.base import InputDataset, OutputDataset

        from drkit.lineage import openlineage_facets as ol_facets

        now = registry.aliases_at(change.model)

        def facet(label: str) -> dict[str, Any]:
            named = [a for a, v in now.items() if v == label]
            v = registry.version(change.model, label)
            return ol_facets.ModelVersionDatasetFacet.of(v, named, PRODUCER)

        name = f"models/{change.model}"
        before = change.from_version
        inputs = [InputDataset(**self.dataset(name, before, facet(before)))] if before else []
        output = OutputDataset(**self.dataset(name, change.to_version, facet(change.to_version)))
        seed = f"{self.namespace}/{change.model}:{change.alias}/{change.event_id}"
        with self.running(
            job, MODEL_ALIAS, run_id=uuid.uuid5(uuid.NAMESPACE_URL, seed), inputs=inputs
        ) as run:
            run.complete(outputs=[output])

    def eval_started(
        self, run_id: str, eval_set: str, digest: str, model_version: str | None
    ) -> Run:
        """START of ``eval.SET``: inputs the eval set at its digest and the model version."""
        job = f"eval.{eval_set}"
        if not self.usable(job):
            return Run(self, job, EVAL, uuid.uuid4(), [], None)
        from openlineage.client.generated.base import InputDataset

        inputs = [InputDataset(**self.dataset(f"eval_sets/{eval_set}", digest))]
        if model_version:
            model, _, label = model_version.partition("@")
            inputs.append(InputDataset(**self.dataset(f"models/{model}", label or None)))
        run_id_ = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/eval/{run_id}")
        return self.start(job, EVAL, run_id=run_id_, inputs=inputs)

    def eval_finished(self, run: Run, summary: Mapping[str, Any]) -> None:
        """COMPLETE of an eval run from its ``eval.run`` event data (docs/events.md):
        output ``eval_runs/SET`` at the run id, run facet ``drkit_evalResult``. A run
        whose verdict is fail still COMPLETEs: the facet carries the verdict."""
        if not self.enabled:
            run.ended = True
            return
        from openlineage.client.generated.base import OutputDataset

        from drkit.lineage import openlineage_facets as ol_facets

        name = f"eval_runs/{summary['eval_set']}"
        output = OutputDataset(**self.dataset(name, str(summary["run_id"])))
        facet = ol_facets.EvalResultRunFacet.of(summary, PRODUCER)
        run.complete(outputs=[output], facets={"drkit_evalResult": facet})


class Run:
    """One OpenLineage run: START was sent; :meth:`complete` or :meth:`fail` ends it."""

    def __init__(
        self,
        emitter: Emitter,
        job: str,
        job_type: str,
        run_id: uuid.UUID,
        inputs: list[InputDataset],
        description: str | None,
    ) -> None:
        self.emitter = emitter
        self.job = job
        self.job_type = job_type
        self.run_id = run_id
        self.inputs = inputs
        self.description = description
        self.ended = False

    @contextmanager
    def failing(self) -> Iterator[None]:
        """An exception out of the block ends the run FAIL (ABORT for Ctrl-C, SIGTERM)
        and goes on; a block that returns leaves the run to its caller to end."""
        try:
            yield
        except Exception as exc:
            self.fail(str(exc) or type(exc).__name__)
            raise
        except BaseException as exc:
            self.fail(f"interrupted ({type(exc).__name__})", aborted=True)
            raise

    def complete(
        self,
        *,
        outputs: Sequence[OutputDataset] = (),
        facets: Mapping[str, Any] | None = None,
    ) -> None:
        self._end("COMPLETE", outputs, facets)

    def fail(self, message: str, *, aborted: bool = False) -> None:
        """FAIL (ABORT when ``aborted``) with an errorMessage run facet."""
        if self.ended or not self.emitter.enabled:  # nothing to build (nor to import)
            self.ended = True
            return
        from openlineage.client.facet_v2 import error_message_run

        error = error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="python", producer=PRODUCER
        )
        self._end("ABORT" if aborted else "FAIL", (), {"errorMessage": error})

    def _end(
        self, kind: str, outputs: Sequence[OutputDataset], facets: Mapping[str, Any] | None
    ) -> None:
        if self.ended:
            return
        self.ended = True
        if self.emitter.enabled:
            self.emit(kind, outputs, facets)

    def emit(
        self,
        kind: str,
        outputs: Sequence[OutputDataset] = (),
        facets: Mapping[str, Any] | None = None,
    ) -> bool:
        from openlineage.client.facet_v2 import (
            documentation_job,
            job_type_job,
            processing_engine_run,
        )
        from openlineage.client.generated.base import EventType, Job, RunEvent
        from openlineage.client.generated.base import Run as OLRun

        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH",
                integration="DRKIT",
                jobType=self.job_type,
                producer=PRODUCER,
            )
        }
        if self.description:
            job_facets["documentation"] = documentation_job.DocumentationJobFacet(
                description=self.description, producer=PRODUCER
            )
        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__, name="drkit", producer=PRODUCER
            ),
            **(facets or {}),
        }
        event = RunEvent(
            eventType=EventType(kind),
            eventTime=_now(),
            run=OLRun(runId=str(self.run_id), facets=run_facets),
            job=Job(namespace=self.emitter.namespace, name=self.job, facets=job_facets),
            inputs=list(self.inputs),
            outputs=list(outputs),
            producer=PRODUCER,
        )
        return self.emitter.emit(event)
