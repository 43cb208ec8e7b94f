"""Eval history: one Parquet file per run, plus an ``eval.run`` event in drkit's state.

The Parquet file (``<history>/<run_id>.parquet``) holds one row per example; the run's
summary is in the file's key-value metadata under ``drkit.eval_run`` (JSON) and in the
``eval.run`` event (docs/events.md). The file is written to a temporary name and
renamed into place, so an interrupted run leaves no history entry. Readable with
pyarrow or DuckDB: ``SELECT * FROM '<history>/*.parquet'``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from drkit.errors import UsageError
from drkit.evals.runner import ExampleResult
from drkit.evals.thresholds import Thresholds

META_KEY = b"drkit.eval_run"

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("eval_set", pa.string()),
        ("eval_set_digest", pa.string()),
        ("example_id", pa.string()),
        ("topic", pa.string()),
        ("score", pa.float64()),
        ("answer", pa.string()),
        ("latency_s", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("served_by", pa.string()),
        ("upstream_model", pa.string()),
        ("attempts", pa.int64()),
        ("error", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The data fields of the ``eval.run`` event (stable: other helpers read them)."""

    run_id: str
    eval_set: str
    eval_set_digest: str
    route: str | None
    target: str | None
    model_version: str | None
    n: int
    mean_score: float
    errors: int
    input_tokens: int
    output_tokens: int
    duration_s: float
    started_at: float
    served_by: list[str]
    path: str
    #: the verdict: at most ``max_errors`` errors and, if set, ``mean_score >= pass_threshold``
    passed: bool = False
    pass_threshold: float | None = None
    max_errors: int = 0
    #: where the threshold came from (``command line``, ``tiers.critical.quality``, ``default``)
    pass_threshold_from: str = "default"
    #: the plan's ``eval_results`` component whose directory holds ``path`` (None: none)
    history_component: str | None = None
    #: the plan's first ``harnesses`` component, its HEAD commit when the run started and
    #: whether its work tree had uncommitted changes (None: the plan has no harness)
    harness: str | None = None
    harness_commit: str | None = None
    harness_dirty: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def summarise(
    run_id: str,
    eval_set: str,
    digest: str,
    results: list[ExampleResult],
    *,
    route: str | None,
    target: str | None,
    model_version: str | None,
    started_at: float,
    duration_s: float,
    path: str,
    thresholds: Thresholds,
    history_component: str | None = None,
) -> RunSummary:
    n = len(results)
    mean = sum(r.score for r in results) / n if n else 0.0
    errors = sum(1 for r in results if r.error)
    return RunSummary(
        run_id=run_id,
        eval_set=eval_set,
        eval_set_digest=digest,
        route=route,
        target=target,
        model_version=model_version,
        n=n,
        mean_score=mean,
        errors=errors,
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        duration_s=round(duration_s, 6),
        started_at=started_at,
        served_by=sorted({r.served_by for r in results if r.served_by}),
        path=path,
        passed=n > 0 and thresholds.verdict(mean, errors),
        pass_threshold=thresholds.floor,
        max_errors=thresholds.max_errors,
        pass_threshold_from=thresholds.sources["floor"],
        history_component=history_component,
    )


def write_run(directory: Path, summary: RunSummary, results: list[ExampleResult]) -> Path:
    """Write the run's Parquet file atomically; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for r in results:
        d = asdict(r)
        d.update(
            run_id=summary.run_id,
            eval_set=summary.eval_set,
            eval_set_digest=summary.eval_set_digest,
        )
        for name in SCHEMA.names:
            rows[name].append(d[name])
    table = pa.table(rows, schema=SCHEMA).replace_schema_metadata(
        {META_KEY: json.dumps(summary.to_dict()).encode()}
    )
    final = directory / f"{summary.run_id}.parquet"
    tmp = directory / f".{summary.run_id}.parquet.tmp"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def run_path(directory: Path, run_id: str) -> Path:
    """The file of ``run_id`` (a unique prefix is enough)."""
    exact = directory / f"{run_id}.parquet"
    if exact.exists():
        return exact
    found = sorted(directory.glob(f"{run_id}*.parquet")) if directory.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"no eval run {run_id!r} in {directory}", hint="list runs with `drkit eval history`"
        )
    raise UsageError(f"eval run prefix {run_id!r} is ambiguous ({len(found)} runs)")


def read_summary(path: Path) -> RunSummary:
    meta = pq.read_schema(path).metadata or {}
    data = json.loads(meta[META_KEY])
    data["path"] = str(path)
    return RunSummary(**data)


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def list_runs(directory: Path) -> list[RunSummary]:
    if not directory.is_dir():
        return []
    runs = [read_summary(p) for p in directory.glob("*.parquet")]
    return sorted(runs, key=lambda s: s.started_at)
