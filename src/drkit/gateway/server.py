"""Running the gateway under uvicorn (the CLI's ``drkit gateway serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from drkit.errors import UsageError
from drkit.gateway.app import create_app
from drkit.gateway.canary import QualityCanary
from drkit.gateway.config import GatewayConfig
from drkit.gateway.events import EventSink, FanOutEventSink, JsonlEventSink, LoggingEventSink
from drkit.gateway.model_alias import ModelResolver

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


class _CoalescingTransport:
    """Joins the writes made in one event-loop step into one ``send``.

    uvicorn writes a response's status line and headers, then its body, as two writes;
    uvloop sends each at once, so every response cost two packets and two wake-ups of
    the client. Writes are kept until the current step ends (``call_soon``), in order;
    ``close`` sends what is kept first. Everything else goes to the real transport.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with each step's writes sent together."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, _CoalescingTransport(transport, self.loop))


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGINT/SIGTERM is a requested stop: it shuts down
    gracefully and returns (exit 0) instead of re-raising the signal once it is done,
    which made the process die with 130/143 after a clean shutdown."""

    #: the signal that stopped the server, if one did
    stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        if self._captured_signals:
            self.stopped_by = self._captured_signals[0]


def uvicorn_config(
    config: GatewayConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    events: EventSink | None = None,
    fd: int | None = None,
    canary: QualityCanary | None = None,
    resolver: ModelResolver | None = None,
) -> uvicorn.Config:
    app = create_app(config, events=events, canary=canary, resolver=resolver)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        fd=fd,
        loop="uvloop",
        http=GatewayHttpProtocol,
        backlog=4096,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # the client address is not used: no X-Forwarded-For rewriting layer per request
        proxy_headers=False,
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
    canary: QualityCanary | None = None,
    resolver: ModelResolver | None = None,
) -> int | None:
    """Serve until interrupted; the signal that stopped it (SIGINT/SIGTERM), if any.

    Raises UsageError when the address is taken."""
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
    server = _Server(
        uvicorn_config(config, host, port, events=events, canary=canary, resolver=resolver)
    )
    if on_ready is not None:
        on_ready(host, sock.getsockname()[1])
    with contextlib.closing(sock):
        server.run(sockets=[sock])
    return server.stopped_by
