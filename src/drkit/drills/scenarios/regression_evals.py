"""The eval runs of ``model-regression``: through the rehearsal's gateway route, scored
by :mod:`drkit.evals`, recorded in the drill's sandbox state as ``eval.run`` events.

Also how the drill asks the gateway which model version it serves
(``x-drkit-model-version``) and waits for an alias change to reach it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import DrillError
from drkit.state.store import StateStore

#: examples in the drill's eval set (enough for the paired test to see a total regression)
EXAMPLES = 20
#: an eval run "passes" at this mean score with no failed request
PASS_SCORE = 0.9
#: how long a gateway may take to serve an alias change before the drill gives up
PROPAGATION_LIMIT = 15.0
_WORDS = [
    "replica",
    "snapshot",
    "restore",
    "failover",
    "region",
    "primary",
    "backup",
    "drill",
    "ledger",
    "alias",
    "lineage",
    "verify",
    "quorum",
    "standby",
    "journal",
    "canary",
    "budget",
    "probe",
    "ejection",
    "recovery",
]


@dataclass
class EvalRun:
    version: str
    mean: float
    errors: int
    passed: bool
    event_id: int
    rows: list[dict[str, Any]]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "mean_score": round(self.mean, 4),
            "errors": self.errors,
            "passed": self.passed,
        }


@dataclass
class GatewayEvals:
    """Eval runs through route ``route`` of the gateway at ``url``, by label."""

    url: str
    route: str
    model: str
    workdir: Path
    sandbox: StateStore
    runs: dict[str, EvalRun] = field(default_factory=dict)

    def _eval_set(self) -> Path:
        path = self.workdir / "regression-evalset.jsonl"
        if not path.exists():
            lines = [
                json.dumps(
                    {"id": f"word-{i}", "prompt": f"{w} {i}", "expected": f"{w} {i}"},
                )
                for i, w in enumerate(_WORDS[:EXAMPLES])
            ]
            path.write_text("\n".join(lines) + "\n")
        return path

    def served_version(self) -> str | None:
        import httpx

        r = httpx.post(
            self.url + "/v1/chat/completions",
            json={
                "model": self.route,
                "messages": [{"role": "user", "content": "which version"}],
                "max_tokens": 4,
            },
            timeout=30.0,
        )
        version: str | None = r.headers.get("x-drkit-model-version")
        return version

    def wait_served(self, version: str) -> float:
        """When the gateway serves ``MODEL@version`` (DrillError past the limit)."""
        want = f"{self.model}@{version}"
        start = time.time()
        while True:
            got = self.served_version()
            if got == want:
                return time.time()
            if time.time() - start > PROPAGATION_LIMIT:
                raise DrillError(
                    f"the gateway still serves {got} {PROPAGATION_LIMIT:.0f}s after the alias "
                    f"moved to {want}"
                )
            time.sleep(0.05)

    def evaluate(self, label: str) -> EvalRun:
        """One eval run through the gateway's route, recorded in the sandbox as
        ``eval.run`` (``model_version``, ``passed``, per-example Parquet rows)."""
        from drkit.evals import Endpoint, load_eval_set, read_rows
        from drkit.evals.history import new_run_id, summarise, write_run
        from drkit.evals.thresholds import resolve

        version = self.served_version() or "?"
        es = load_eval_set(self._eval_set())
        ep = Endpoint(self.url + "/v1", "openai", self.route, None, "route")
        started = time.time()
        results = asyncio.run(_run(es, ep))
        run_id = f"{new_run_id()}-{label}"
        history = self.workdir / "evals"
        summary = summarise(
            run_id,
            es.name,
            es.digest,
            results,
            route=self.route,
            target=None,
            model_version=version,
            started_at=started,
            duration_s=time.time() - started,
            path=str(history / f"{run_id}.parquet"),
            # the drill's own floor: its eval set is the drill's, not one of the plan's
            thresholds=resolve(None, eval_set=es.name, overrides={"floor": PASS_SCORE}),
        )
        path = write_run(history, summary, results)
        event = self.sandbox.record_event(
            "eval.run",
            es.name,
            f"eval {es.name} on {version}: mean score {summary.mean_score:.3f}",
            summary.to_dict(),
        )
        run = EvalRun(
            version,
            summary.mean_score,
            summary.errors,
            summary.passed,
            event,
            read_rows(path),
            time.time(),
        )
        self.runs[label] = run
        return run


async def _run(es: Any, ep: Any) -> list[Any]:
    from drkit.evals import run_examples

    return await run_examples(es, ep, concurrency=8, max_tokens=32)
