"""``drkit gateway``: the LLM failover gateway."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drkit.cli.common import (
    DEFAULT_PLAN,
    JsonOption,
    PlanOption,
    announce,
    log_format,
    log_handler,
)
from drkit.errors import UsageError

if TYPE_CHECKING:
    from drkit.gateway.events import EventSink
    from drkit.state.store import StateStore

gateway_app = typer.Typer(
    name="gateway",
    help="The LLM gateway: failover across providers and regions.",
    no_args_is_help=True,
)


@gateway_app.command("serve")
def serve_cmd(
    plan: PlanOption = DEFAULT_PLAN,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: plan, else 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: plan, else 8787).")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Append failover/ejection/recovery events to this JSONL file.",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            envvar="DRKIT_GATEWAY_REDIS_URL",
            help="Share target health with other gateway processes through Redis.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the plan's routes (OpenAI and Anthropic APIs) until interrupted."""
    import signal

    from drkit.gateway.config import from_plan
    from drkit.gateway.server import DEFAULT_HOST, DEFAULT_PORT, serve
    from drkit.plan.loader import load_plan
    from drkit.workspace.canary import canary_from_plan

    gateway_log = _gateway_logger()
    loaded = load_plan(plan)
    config = from_plan(loaded, events_path=str(events) if events else None, redis_url=redis_url)
    settings = loaded.serving.gateway
    bind_host = host or settings.host or DEFAULT_HOST
    bind_port = port if port is not None else (settings.port or DEFAULT_PORT)
    if loaded.serving.unauthenticated_on_network(bind_host):
        raise UsageError(
            f"client auth is disabled (serving.auth.disabled) and {bind_host} is not a "
            "loopback address: anyone who reaches it could spend the provider keys",
            hint="listen on 127.0.0.1, turn auth on, or set "
            "serving.auth.allow_unauthenticated_network: true",
        )

    def ready(h: str, p: int) -> None:
        routes = [r.name for r in config.routes]
        announce(
            {"listening": f"http://{h}:{p}", "routes": routes},
            as_json,
            f"drkit gateway listening on http://{h}:{p} (routes: {', '.join(routes)}; "
            f"auth {'off' if config.auth_disabled else 'on'})",
        )

    from drkit.lineage.registry import Registry
    from drkit.state.store import StateStore, plan_state_location

    state = StateStore(plan_state_location(loaded))
    stopped_by = serve(
        config,
        bind_host,
        bind_port,
        events=_event_sinks(state, config.events_path),
        on_ready=ready,
        canary=canary_from_plan(loaded),  # routes with `canary:` (docs/evals.md)
        # targets naming `@MODEL:ALIAS` follow the registry in the same state (all processes)
        resolver=Registry(state).serving,
    )
    if stopped_by is not None:  # a requested stop: graceful, exit 0 (as documented)
        gateway_log.info("stopped on %s", signal.Signals(stopped_by).name)


def _gateway_logger() -> logging.Logger:
    """The gateway's logger, on stderr in the chosen format (--log-format json: one JSON
    object a line), not passed on to the root logger."""
    gateway_log = logging.getLogger("drkit.gateway")
    gateway_log.addHandler(log_handler(log_format()))
    gateway_log.setLevel(logging.INFO)
    gateway_log.propagate = False
    return gateway_log


def _event_sinks(state: StateStore, events_path: str | None) -> EventSink:
    """Where the gateway's events go: the log, drkit's state (the status page turns them
    into component states) and, with --events, a JSONL file."""
    from drkit.gateway.events import (
        FanOutEventSink,
        JsonlEventSink,
        LoggingEventSink,
        StateEventSink,
    )

    sinks: list[EventSink] = [LoggingEventSink(), StateEventSink(state)]
    if events_path:
        sinks.insert(0, JsonlEventSink(events_path))
    return FanOutEventSink(*sinks)


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")
