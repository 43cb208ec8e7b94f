"""Running the gateway under uvicorn (the CLI's ``drkit gateway serve``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import uvicorn

from drkit.errors import UsageError
from drkit.gateway.app import create_app
from drkit.gateway.config import GatewayConfig
from drkit.gateway.events import EventSink, FanOutEventSink, JsonlEventSink, LoggingEventSink

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def uvicorn_config(
    config: GatewayConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    events: EventSink | None = None,
    fd: int | None = None,
) -> uvicorn.Config:
    app = create_app(config, events=events)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        fd=fd,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=5,
    )


def serve(
    config: GatewayConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    events: EventSink | None = None,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve until interrupted. Raises UsageError when the address is taken."""
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another --port, or stop whatever is listening there",
        ) from exc
    if events is None:
        sinks: list[EventSink] = [LoggingEventSink()]
        if config.events_path:
            sinks.insert(0, JsonlEventSink(config.events_path))
        events = FanOutEventSink(*sinks)
    server = uvicorn.Server(uvicorn_config(config, host, port, events=events))
    if on_ready is not None:
        on_ready(host, sock.getsockname()[1])
    with contextlib.closing(sock):
        server.run(sockets=[sock])
