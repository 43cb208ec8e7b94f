"""Run an eval set through the serving path over HTTP, like any client.

Every example is one non-streaming chat request, either to a running gateway (the
route is the ``model`` name) or straight to one provider target. Requests run with
bounded concurrency; only transport errors (connection refused/reset, timeouts) are
retried, with a short backoff; an HTTP error answer is recorded as a failed example
(score 0, ``error`` set), never retried. The gateway's ``x-drkit-target`` header says
which target served each answer; the answer's ``model`` field is the upstream model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from drkit.evals.evalset import EvalSet, Example
from drkit.evals.judge import Judge
from drkit.evals.scorers import JUDGED

Dialect = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to send requests: a base URL in the official SDKs' convention."""

    base_url: str
    dialect: Dialect = "openai"
    model: str = ""
    api_key: str | None = None
    #: the name recorded as the run's route or target
    via: Literal["route", "target"] = "route"

    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base + ("/chat/completions" if self.dialect == "openai" else "/v1/messages")


@dataclass(slots=True)
class ExampleResult:
    example_id: str
    score: float
    answer: str
    latency_s: float
    input_tokens: int
    output_tokens: int
    served_by: str | None
    upstream_model: str | None
    attempts: int
    error: str | None = None
    topic: str | None = None


def _body(ep: Endpoint, ex: Example, max_tokens: int) -> dict[str, Any]:
    msgs = [dict(m) for m in ex.messages]
    if ep.dialect == "openai":
        return {"model": ep.model, "messages": msgs, "max_tokens": max_tokens}
    system = " ".join(m["content"] for m in msgs if m["role"] == "system")
    body: dict[str, Any] = {
        "model": ep.model,
        "max_tokens": max_tokens,
        "messages": [m for m in msgs if m["role"] != "system"],
    }
    if system:
        body["system"] = system
    return body


def _headers(ep: Endpoint) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if ep.dialect == "anthropic":
        h["anthropic-version"] = "2023-06-01"
    if ep.api_key:
        if ep.dialect == "anthropic":
            h["x-api-key"] = ep.api_key
        else:
            h["authorization"] = f"Bearer {ep.api_key}"
    return h


def _parse(ep: Endpoint, data: Any) -> tuple[str, int, int, str | None]:
    if not isinstance(data, dict):
        return "", 0, 0, None
    usage = data.get("usage") or {}
    if ep.dialect == "openai":
        choices = data.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        tin, tout = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    else:
        text = "".join(
            b.get("text", "") for b in data.get("content") or [] if b.get("type") == "text"
        )
        tin, tout = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    model = data.get("model")
    return str(text), int(tin or 0), int(tout or 0), str(model) if model else None


def _unanswered(
    ex: Example, latency: float, served: str | None, attempts: int, error: str
) -> ExampleResult:
    """An example with no answer to score: score 0, no text or tokens, ``error`` says why."""
    return ExampleResult(ex.id, 0.0, "", latency, 0, 0, served, None, attempts, error, ex.topic)


async def _one(
    client: httpx.AsyncClient,
    ep: Endpoint,
    ex: Example,
    *,
    retries: int,
    max_tokens: int,
    judge: Judge | None = None,
) -> ExampleResult:
    body = _body(ep, ex, max_tokens)
    started = time.perf_counter()
    attempts = 0
    error: str | None = None
    while True:
        attempts += 1
        try:
            resp = await client.post(ep.url(), json=body, headers=_headers(ep))
        except httpx.TransportError as exc:
            error = f"transport: {type(exc).__name__}"
            if attempts <= retries:
                await asyncio.sleep(min(0.05 * 2**attempts, 1.0))
                continue
            return _unanswered(ex, time.perf_counter() - started, None, attempts, error)
        break
    latency = time.perf_counter() - started
    error = None  # an earlier attempt's transport error was retried away
    served = resp.headers.get("x-drkit-target")
    if resp.status_code != 200:
        return _unanswered(ex, latency, served, attempts, f"http {resp.status_code}")
    try:
        data = resp.json()
    except ValueError:
        data = None
    text, tin, tout, model = _parse(ep, data)
    score = 0.0
    if data is None:
        error = "malformed answer"
    elif ex.scorer in JUDGED:
        if judge is None:
            error = f"scorer {ex.scorer} needs a gateway with the judge route"
        else:
            score, error = await judge.score(client, ex, text)
    else:
        score = ex.score(text)
    return ExampleResult(
        ex.id,
        score,
        text,
        latency,
        tin,
        tout,
        served,
        model,
        attempts,
        error,
        ex.topic,
    )


async def run_examples(
    eval_set: EvalSet,
    endpoint: Endpoint,
    *,
    concurrency: int = 8,
    retries: int = 2,
    timeout: float = 60.0,
    max_tokens: int = 256,
    progress: Callable[[ExampleResult], None] | None = None,
    judge: Judge | None = None,
) -> list[ExampleResult]:
    """Every example of ``eval_set`` through ``endpoint``; results in the set's order."""
    sem = asyncio.Semaphore(max(1, concurrency))
    limits = httpx.Limits(max_connections=max(1, concurrency))
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def task(ex: Example) -> ExampleResult:
            async with sem:
                result = await _one(
                    client, endpoint, ex, retries=retries, max_tokens=max_tokens, judge=judge
                )
            if progress is not None:
                progress(result)
            return result

        return list(await asyncio.gather(*(task(ex) for ex in eval_set.examples)))
