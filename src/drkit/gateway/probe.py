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

from drkit.connectors.llm.client import UpstreamClient
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
    client: UpstreamClient, keys: dict[str, Secret | None], config: GatewayConfig
) -> Prober:
    t = config.health.probe_timeout
    deadlines = Deadlines(connect=t, first_token=t, stream_idle=t, total=t)

    async def probe(target: TargetConfig) -> None:
        try:
            async with client.stream(
                dialect=target.provider,
                base_url=target.base_url,
                body=probe_body(target),
                deadlines=deadlines,
                api_key=keys.get(target.name),
                name=target.name,
            ) as up:
                async for _ in up:
                    if up.first_content or up.complete:
                        return
        except UpstreamError as exc:
            if exc.reason == "status_4xx":
                return
            raise

    return probe
