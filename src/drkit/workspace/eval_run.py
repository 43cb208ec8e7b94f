"""One eval run, end to end: what ``drkit eval run`` and the agent's scheduled evals do.

Load and validate the eval set, resolve its thresholds from the plan
(:func:`drkit.plan.quality.resolve`), send every example through the gateway route (or
to one target), store the run in eval history (Parquet, renamed into place) and index it
in drkit's state as an ``eval.run`` event. The caller decides what a run that did not
pass means: the CLI exits 1, the agent's job fails (:meth:`EvalOutcome.failure`).

:func:`regression` is the scheduled eval's second verdict: the paired gate
(:func:`drkit.evals.compare.compare`) of the run against the newest earlier passing run
of the same eval-set version, route and harness commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drkit.errors import CheckFailed, SecretMissing, UsageError
from drkit.evals.compare import Comparison, compare
from drkit.evals.evalset import EvalSet, load_eval_set
from drkit.evals.history import RunSummary, list_runs, new_run_id, read_rows, summarise, write_run
from drkit.evals.judge import Judge
from drkit.evals.runner import Endpoint, ExampleResult, run_examples
from drkit.evals.scorers import JUDGED
from drkit.evals.thresholds import resolve
from drkit.plan.models import Plan
from drkit.workspace.eval_history import EvalPlace

#: what :func:`run_eval` calls once the set is loaded; returns the per-example callback
OnStart = Callable[[EvalSet], Callable[[ExampleResult], None]]


@dataclass(frozen=True, slots=True)
class EvalRequest:
    """What to run and against what: ``gateway`` + ``route``, or ``target`` (+ ``model``)."""

    eval_set: Path
    gateway: str | None = None
    route: str | None = None
    target: str | None = None
    model: str = "default"
    dialect: Literal["openai", "anthropic"] = "openai"
    model_version: str | None = None
    api_key: str | None = field(default=None, repr=False)
    #: the gateway key of llm_judge requests (None: ``api_key`` when through the gateway)
    judge_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    #: the command line's thresholds (``floor``, ``max_errors``); None: unset
    overrides: dict[str, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    eval_set: EvalSet
    summary: RunSummary

    def failure(self) -> CheckFailed | None:
        """Why the run did not pass (too many errors, a mean score under the floor), or None."""
        s, name = self.summary, self.eval_set.name
        if s.errors > s.max_errors:
            return CheckFailed(
                f"{s.errors} of {s.n} examples of {name} failed to get an answer "
                f"(at most {s.max_errors} allowed)",
                hint="check --gateway/--target and that the server is up, or raise --max-errors",
            )
        if not s.passed:
            return CheckFailed(
                f"{name}: mean score {s.mean_score:.3f} is below the pass threshold "
                f"{s.pass_threshold:.3f} ({s.pass_threshold_from})"
            )
        return None


def run_eval(place: EvalPlace, req: EvalRequest, on_start: OnStart | None = None) -> EvalOutcome:
    """Run ``req``, store it in ``place``'s history and index it in drkit's state.

    Bad input (a malformed eval set, a judge with no gateway, a harness path that is no git
    repository) raises before any request is sent; nothing is written then. An interrupted
    run writes nothing either (:func:`drkit.evals.history.write_run` renames into place)."""
    if (req.gateway is None) == (req.target is None):
        raise UsageError("an eval run goes through a gateway route or to one target")
    es = load_eval_set(req.eval_set)
    route = req.route if req.gateway is not None else None
    thresholds = resolve(
        place.plan,
        eval_set=es.name,
        file=req.eval_set,
        model_version=req.model_version,
        route=route,
        overrides=req.overrides,
    )
    if req.gateway is not None:
        base = req.gateway.rstrip("/") + ("/v1" if req.dialect == "openai" else "")
        ep = Endpoint(base, req.dialect, route or "", req.api_key, "route")
    else:
        ep = Endpoint(req.target or "", req.dialect, req.model, req.api_key, "target")
    judge = None
    if any(ex.scorer in JUDGED for ex in es.examples):
        judge_gw = req.gateway or place.gateway_url()
        if judge_gw is None:
            raise UsageError(
                f"{es.name} uses the llm_judge scorer, which asks a route of a gateway",
                hint="run through a gateway (--gateway URL), or with a plan whose "
                "serving.gateway runs",
            )
        judge_key = req.judge_key or (req.api_key if req.gateway else None)
        judge = Judge(judge_gw.rstrip("/") + "/v1", judge_key)
    from drkit.workspace.harness import harness_commit

    harness = harness_commit(place.plan)  # a harness path that is no git repository: exit 2
    from drkit.workspace.openlineage_out import openlineage_out

    run_id = new_run_id()
    lineage = openlineage_out(place.plan, place.state)
    lineage_run = lineage.eval_started(run_id, es.name, es.digest, req.model_version)
    started = time.time()
    t0 = time.perf_counter()
    progress = on_start(es) if on_start is not None else None
    with lineage_run.failing():
        results = asyncio.run(
            run_examples(es, ep, concurrency=req.concurrency, progress=progress, judge=judge)
        )
    duration = time.perf_counter() - t0
    path = place.history / f"{run_id}.parquet"
    summary = summarise(
        run_id,
        es.name,
        es.digest,
        results,
        route=route,
        target=req.target,
        model_version=req.model_version,
        started_at=started,
        duration_s=duration,
        path=str(path),
        thresholds=thresholds,
        history_component=place.component,
    )
    summary = dataclasses.replace(summary, **harness)
    write_run(place.history, summary, results)
    place.record(
        "eval.run",
        es.name,
        f"eval {es.name}: mean score {summary.mean_score:.3f} over {summary.n} "
        f"({'passed' if summary.passed else 'did not pass'})",
        summary.to_dict(),
    )
    lineage.eval_finished(lineage_run, summary.to_dict())
    return EvalOutcome(es, summary)


def regression(place: EvalPlace, run: RunSummary) -> tuple[RunSummary, Comparison] | None:
    """The paired gate of ``run`` against the newest earlier passing run of the same
    eval-set version, route and harness commit (None: there is none yet), with the plan's
    ``alpha`` and ``max_drop``."""
    pinned = (run.eval_set, run.eval_set_digest, run.route, run.harness_commit)
    earlier = [
        s
        for s in list_runs(place.history)
        if s.run_id != run.run_id
        and s.started_at < run.started_at
        and s.passed
        and (s.eval_set, s.eval_set_digest, s.route, s.harness_commit) == pinned
    ]
    if not earlier:
        return None
    base = max(earlier, key=lambda s: s.started_at)
    t = resolve(place.plan, eval_set=run.eval_set, model_version=run.model_version, route=run.route)
    c = compare(
        read_rows(Path(base.path)),
        read_rows(place.history / f"{run.run_id}.parquet"),
        alpha=t.alpha,
        max_drop=t.max_drop,
        baseline_id=base.run_id,
        candidate_id=run.run_id,
    )
    return base, c


def gateway_client_key(plan: Plan, env: str | None = None) -> str | None:
    """The key an agent's eval run sends to the plan's gateway: the variable ``env``, else
    the first of ``serving.auth``'s client keys (inline, then its variable); None with auth
    disabled. ``SecretMissing`` when auth is on and no key is to be had."""
    auth = plan.serving.auth
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SecretMissing(
                f"api_key_env {env}: the variable is not set", hint=f"export {env}=<client key>"
            )
        return value
    if auth.disabled:
        return None
    keys = [k.reveal() for k in auth.client_keys if k.reveal()]
    raw = os.environ.get(auth.client_keys_env, "") if auth.client_keys_env else ""
    keys += [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        var = auth.client_keys_env or "DRKIT_GATEWAY_KEYS"
        raise SecretMissing(
            f"gateway auth is on but {var} holds no client key for the scheduled eval",
            hint=f"export {var}=key1,key2, or give the scheduled eval an api_key_env",
        )
    return keys[0]
