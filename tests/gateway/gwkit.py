"""Helpers for the gateway tests: simulators, routes, a gateway on real uvicorn in a thread.

Four simulators run for the whole session (a primary and a secondary of each dialect);
every test starts with their faults cleared and their counters at zero. A gateway is
started per test (fresh health state) on 127.0.0.1 and a free port, in a thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from tests.servers import free_port, uvicorn_in_thread

from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.gateway.app import Gateway, create_app
from drkit.gateway.config import (
    Deadlines,
    GatewayConfig,
    HealthPolicy,
    RouteConfig,
    TargetConfig,
)
from drkit.gateway.events import MemoryEventSink

__all__ = ["free_port"]  # re-exported: the gateway tests import it from here

#: provider keys the simulators require (and that must never leak through the gateway)
SIM_KEYS = {
    "openai": "sk-sim-openai-0123456789abcdef",
    "anthropic": "sk-ant-sim-0123456789abcdef",
}
KEY_ENV = {"openai": "DRKIT_TEST_OPENAI_KEY", "anthropic": "DRKIT_TEST_ANTHROPIC_KEY"}
CLIENT_KEY = "drkit-client-key-1"
CLIENT_KEYS_ENV = "DRKIT_TEST_GATEWAY_KEYS"

#: short deadlines so black holes and stalls cost well under a second per test
FAST = Deadlines(connect=1.0, first_token=0.6, stream_idle=0.6, total=10.0)
#: no probes unless a test wants them (they would add upstream requests to the counts)
QUIET = HealthPolicy(probe_interval=60.0, max_probe_interval=60.0)


@dataclass
class Sims:
    oa1: ProviderSimulator
    oa2: ProviderSimulator
    an1: ProviderSimulator
    an2: ProviderSimulator

    def all(self) -> list[ProviderSimulator]:
        return [self.oa1, self.oa2, self.an1, self.an2]

    def primary(self, dialect: str) -> ProviderSimulator:
        return self.oa1 if dialect == "openai" else self.an1

    def secondary(self, dialect: str) -> ProviderSimulator:
        return self.oa2 if dialect == "openai" else self.an2


def chat_attempts(sim: ProviderSimulator) -> int:
    return int(sim.stats()["by_endpoint"].get("chat", 0))


def target_for(sim: ProviderSimulator, name: str) -> TargetConfig:
    return TargetConfig(
        name=name,
        provider=sim.dialect,
        model="sim-large",
        base_url=sim.base_url,
        api_key_env=KEY_ENV[sim.dialect],
        region="eu-west" if name.endswith("1") else "us-east",
    )


def route_for(
    *sims: ProviderSimulator,
    name: str = "assistant",
    on_stream_failure: str = "error",
    deadlines: Deadlines = FAST,
) -> RouteConfig:
    targets = tuple(target_for(s, f"{s.dialect}-{i + 1}") for i, s in enumerate(sims))
    return RouteConfig(
        name=name,
        targets=targets,
        deadlines=deadlines,
        on_stream_failure=on_stream_failure,  # type: ignore[arg-type]
    )


@dataclass
class RunningGateway:
    url: str
    gateway: Gateway
    events: MemoryEventSink

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {CLIENT_KEY}"}

    def admin(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/admin/targets", headers=self.headers())
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def state(self, target: str) -> str:
        for t in self.admin()["targets"]:
            if t["name"] == target:
                return str(t["state"])
        raise KeyError(target)


@contextlib.contextmanager
def run_gateway(config: GatewayConfig) -> Iterator[RunningGateway]:
    events = MemoryEventSink()
    app = create_app(config, events=events)
    server = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    with uvicorn_in_thread(server, what="the gateway") as url:
        yield RunningGateway(url, app.state.gateway, events)


def make_config(*routes: RouteConfig, **kw: Any) -> GatewayConfig:
    health = kw.pop("health", QUIET)
    return GatewayConfig(routes=tuple(routes), client_keys_env=CLIENT_KEYS_ENV, health=health, **kw)
