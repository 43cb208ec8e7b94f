"""A serving rehearsal: the plan's route on a real gateway, its targets played by simulators.

Faults cannot be injected into a real provider, so a serving drill rehearses the route
exactly as the plan configures it — target order, deadlines, health policy — with each
target replaced by a seeded provider simulator of the same dialect, model and region.
Everything listens on 127.0.0.1; :meth:`Rehearsal.stop` is idempotent and is called by
the drill's rollback.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from drkit.connectors.llm.faults import Fault
from drkit.errors import DrillError
from drkit.gateway.config import GatewayConfig, from_mapping
from drkit.gateway.events import MemoryEventSink
from drkit.plan.models import Plan, Route

if TYPE_CHECKING:  # servers (the gateway extra) load when a rehearsal starts, not at import
    import uvicorn

    from drkit.connectors.llm.simulator import ProviderSimulator
    from drkit.gateway.model_alias import ModelResolver


@dataclass(frozen=True, slots=True)
class Answer:
    """One client request through the gateway, as the client saw it."""

    at: float  # when the answer (or error) arrived
    latency_s: float
    status: int
    target: str | None
    attempts: int
    complete: bool

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.complete


@dataclass
class Rehearsal:
    plan: Plan
    route: Route
    seed: int = 0
    sims: dict[str, ProviderSimulator] = field(default_factory=dict)
    events: MemoryEventSink = field(default_factory=MemoryEventSink)
    answers: list[Answer] = field(default_factory=list)
    url: str = ""
    #: the simulators' reply mode (``echo`` answers the prompt: eval sets can score it)
    mode: str = "lorem"
    #: resolves targets naming ``@MODEL:ALIAS`` (the model-regression drill's registry)
    resolver: ModelResolver | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _client: httpx.Client | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        import uvicorn

        from drkit.connectors.llm.simulator import ProviderSimulator
        from drkit.gateway.app import create_app

        for i, target in enumerate(self.route.targets):
            sim = ProviderSimulator(
                target.provider,
                seed=self.seed + i,
                api_key=secrets.token_hex(16),
                mode=self.mode,
            )
            self.sims[target.name] = sim.start()
        config = self.gateway_config()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, events=self.events, resolver=self.resolver),
                lifespan="on",
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="drill-gateway", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DrillError("the rehearsal gateway did not start")
            time.sleep(0.01)
        self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(300.0))

    def stop(self) -> None:
        # simulators first: their aborted connections end any request the gateway still
        # waits on (a black hole), so the gateway then shuts down at once
        if self._client is not None:
            self._client.close()
            self._client = None
        for sim in self.sims.values():
            sim.stop()
        self.sims.clear()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._server = None

    def gateway_config(self) -> GatewayConfig:
        """The plan's serving settings for this route, pointed at the simulators."""
        gw = self.plan.serving.gateway
        targets: list[dict[str, Any]] = []
        for t in self.route.targets:
            sim = self.sims[t.name]
            targets.append(
                {
                    "name": t.name,
                    "provider": t.provider,
                    "model": t.model,
                    "base_url": sim.base_url,
                    "api_key": sim.state.api_key,
                    "region": t.region,
                    "system_prompt": t.system_prompt,
                    "params": dict(t.params),
                }
            )
        serving = {
            "auth": {"disabled": True},  # loopback only; client auth is not under test
            "gateway": {
                "retry_budget": gw.retry_budget,
                "health": gw.health.model_dump(),
            },
            "routes": [
                {
                    "name": self.route.name,
                    "tier": self.route.tier,
                    "on_stream_failure": self.route.on_stream_failure,
                    "deadlines": self.route.deadlines.model_dump(),
                    "targets": targets,
                }
            ],
        }
        return from_mapping(serving)

    # --- faults ------------------------------------------------------------------------

    def fail(self, target: str, *faults: Fault | dict[str, Any]) -> None:
        self.sims[target].set_faults(*faults)

    def clear(self) -> None:
        for sim in self.sims.values():
            sim.clear_faults()

    def upstream_requests(self, target: str) -> int:
        return int(self.sims[target].stats()["by_endpoint"].get("chat", 0))

    # --- traffic -----------------------------------------------------------------------

    def ask(self, text: str = "ping") -> Answer:
        """One non-streaming chat completion through the gateway (OpenAI dialect)."""
        assert self._client is not None, "start() the rehearsal first"
        t0 = time.time()
        try:
            r = self._client.post(
                "/v1/chat/completions",
                json={
                    "model": self.route.name,
                    "messages": [{"role": "user", "content": text}],
                    "max_tokens": 16,
                },
            )
            status = r.status_code
            complete = False
            if status == 200:
                body = r.json()
                choice = (body.get("choices") or [{}])[0]
                content = (choice.get("message") or {}).get("content")
                complete = bool(content) and choice.get("finish_reason") is not None
            target = r.headers.get("x-drkit-target")
            attempts = int(r.headers.get("x-drkit-attempts", "0") or 0)
        except httpx.HTTPError:
            status, complete, target, attempts = 0, False, None, 0
        now = time.time()
        answer = Answer(now, now - t0, status, target, attempts, complete)
        self.answers.append(answer)
        return answer

    def first_event(self, *kinds: str, since: float = 0.0) -> float | None:
        for ev in self.events.events:
            if ev.kind in kinds and ev.at >= since:
                return ev.at
        return None

    def target_state(self, target: str) -> str:
        assert self._client is not None
        r = self._client.get("/admin/targets")
        r.raise_for_status()
        for t in r.json()["targets"]:
            if t["name"] == target:
                return str(t["state"])
        raise KeyError(target)
