"""Active probes: a one-token streaming request to an ejected target.

A models-list probe would pass while completions fail (they are often served by
different backends), so the probe asks for what clients ask for, at the smallest size:
one output token. It succeeds when the first content token (or a complete answer)
arrives within the probe timeout, or when the target answers a client error (4xx other
than 429): it is up and judging requests, which is all a probe asks (a model that
refuses ``max_tokens: 1`` must not stay ejected forever).
"""

from __future__ import annotations

from typing import Any

from drkit.connectors.llm.provider import Provider, ProviderRequest
from drkit.errors import UpstreamError
from drkit.gateway.config import Deadlines, GatewayConfig, TargetConfig
from drkit.gateway.health import Prober
from drkit.types import Secret


def probe_body(target: TargetConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model,
        "max_tokens": 1,
        "stream": True,
        "messages": [{"role": "user", "content": "ping"}],
    }
    return body


def make_prober(
    provider: Provider, keys: dict[str, Secret | None], config: GatewayConfig
) -> Prober:
    # a probe gets the same connect and first-token deadlines as the target's traffic
    # (the strictest route it serves in): a provider that is slow but within them is up
    per_target: dict[str, Deadlines] = {}
    for route in config.routes:
        d = route.deadlines
        for t in route.targets:
            prev = per_target.get(t.name)
            first = d.first_token if prev is None else min(prev.first_token, d.first_token)
            connect = d.connect if prev is None else min(prev.connect, d.connect)
            per_target[t.name] = Deadlines(
                connect=connect, first_token=first, stream_idle=first, total=connect + first
            )
    fallback = Deadlines(connect=2.0, first_token=10.0, stream_idle=10.0, total=12.0)

    async def probe(target: TargetConfig) -> None:
        try:
            request = ProviderRequest(
                dialect=target.provider,
                base_url=target.base_url,
                body=probe_body(target),
                deadlines=per_target.get(target.name, fallback),
                api_key=keys.get(target.name),
                name=target.name,
            )
            async with provider.open(request) as up:
                async for _ in up:
                    if up.first_content or up.complete:
                        return
        except UpstreamError as exc:
            if exc.reason == "status_4xx":
                return
            raise

    return probe
