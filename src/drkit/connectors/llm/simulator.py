"""A provider simulator: OpenAI Chat Completions or Anthropic Messages, with faults.

It is faithful enough for the official ``openai`` and ``anthropic`` SDKs (streaming and
not, tool calls, stop sequences, usage, error bodies, required headers) and answers
deterministically under a seed (:mod:`drkit.connectors.llm.replies`). Faults
(:mod:`drkit.connectors.llm.faults`) are set at start and changed at run time through
the admin API, which is served on a separate admin port (and on the API port too, until
``refuse`` closes it):

- ``GET/PUT/POST/DELETE /_sim/faults``: list, replace, add, clear the fault rules;
- ``GET/DELETE /_sim/stats``: requests received (what the gateway tests count as
  upstream attempts), answers completed, faults fired; ``DELETE`` resets them;
- ``GET /_sim/last``: the last chat request body received (to check translations).

Run it with :class:`ProviderSimulator` (a background thread, for tests and benchmarks)
or ``drkit simulate provider`` (the foreground, for drills). It binds 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import uvicorn

from drkit.connectors.llm.faults import Fault
from drkit.connectors.llm.simulator_app import QUIET_CUTS, SimState, build_app
from drkit.connectors.llm.sse import Dialect

# --- the runner --------------------------------------------------------------------------


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (a simulator must not be the bottleneck)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main)
    else:
        uvloop.run(main)


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener says TCP, and without it every keep-alive answer waits ~40 ms (Nagle + ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class ProviderSimulator:
    """Run the simulator: in a background thread (:meth:`start`) or in the foreground (:meth:`run`).

    The API listens on ``port`` (0 picks a free one) and the admin API on ``admin_port``
    (0 picks one too); both on ``host`` (127.0.0.1 by default). ``refuse`` closes the API
    listener and drops its connections; clearing it listens again on the same port.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        mode: str = "lorem",
        api_key: str | None = None,
        token_delay: float = 0.0,
    ) -> None:
        if dialect not in ("openai", "anthropic"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.dialect: Dialect = dialect
        self.host = host
        self.state = SimState(
            dialect, seed=seed, faults=faults, mode=mode, api_key=api_key, token_delay=token_delay
        )
        self._api_sock = _bind(host, port)
        self._admin_sock = _bind(host, admin_port)
        self.port: int = self._api_sock.getsockname()[1]
        self.admin_port: int = self._admin_sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api_server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.state.on_refuse = self._apply_refuse

    # --- addresses ---

    @property
    def base_url(self) -> str:
        """What an SDK takes as ``base_url`` (OpenAI's includes ``/v1``)."""
        root = f"http://{self.host}:{self.port}"
        return root + "/v1" if self.dialect == "openai" else root

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    # --- control (any thread) ---

    def set_faults(self, *faults: Fault | dict[str, Any]) -> None:
        """Replace the fault rules (dicts are parsed as in the admin API).

        Returns once a ``refuse`` change is in effect (the API port closed or reopened).
        """
        rules = [f if isinstance(f, Fault) else Fault.from_dict(f) for f in faults]
        if self.state.set_faults(rules):
            loop = self._loop
            if loop is not None and not loop.is_closed() and self._ready.is_set():
                future = asyncio.run_coroutine_threadsafe(
                    self._apply_refuse(self.state.refusing), loop
                )
                future.result(timeout=10)

    def clear_faults(self) -> None:
        self.set_faults()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset_stats(self) -> None:
        self.state.reset_stats()

    @property
    def last_request(self) -> dict[str, Any] | None:
        with self.state.lock:
            return self.state.last_request

    # --- lifecycle ---

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C in the foreground)."""
        self._loop = asyncio.get_running_loop()
        config = uvicorn.Config(
            build_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="auto",  # httptools when installed
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        config.load()
        server = uvicorn.Server(config)
        self._server = server
        logging.getLogger("uvicorn.error").addFilter(QUIET_CUTS)
        # uvicorn serves the admin socket; the API listener is ours to close and reopen
        serving = asyncio.create_task(server.serve(sockets=[self._admin_sock]))
        while not server.started:
            if serving.done():
                await serving
                return
            await asyncio.sleep(0.005)
        if self.state.refusing:
            self._unlisten(abort=False)
        else:
            await self._listen()
        self._ready.set()
        try:
            await serving
        finally:
            self._unlisten(abort=True)

    def _protocol_factory(self) -> Callable[..., asyncio.Protocol]:
        assert self._server is not None
        config = self._server.config
        protocol: Any = config.http_protocol_class
        return functools.partial(
            protocol,
            config=config,
            server_state=self._server.server_state,
            app_state=self._server.lifespan.state,
        )

    async def _listen(self) -> None:
        if self._api_server is not None:
            return
        loop = asyncio.get_running_loop()
        sock = self._api_sock if self._api_sock.fileno() >= 0 else _bind(self.host, self.port)
        self._api_sock = sock
        self._api_server = await loop.create_server(
            self._protocol_factory(), sock=sock, backlog=2048
        )

    def _unlisten(self, *, abort: bool) -> None:
        if self._api_server is not None:
            self._api_server.close()
            self._api_server = None
        if self._api_sock.fileno() >= 0:
            self._api_sock.close()
        if abort and self._server is not None:
            for conn in list(self._server.server_state.connections):
                transport = getattr(conn, "transport", None)
                if transport is None:
                    continue
                sockname = transport.get_extra_info("sockname")
                if sockname and sockname[1] == self.port:
                    transport.abort()

    async def _apply_refuse(self, refusing: bool) -> None:
        if refusing:
            self._unlisten(abort=True)
        else:
            await self._listen()

    def run(self) -> None:
        """Serve in the foreground until interrupted."""
        _run_loop(self.serve())

    def start(self, timeout: float = 10.0) -> ProviderSimulator:
        """Serve in a background thread; returns once both ports accept connections."""

        def target() -> None:
            try:
                _run_loop(self.serve())
            except BaseException as exc:  # surfaced by start()
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(
            target=target, name=f"sim-{self.dialect}-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the {self.dialect} simulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); in-flight requests are dropped."""
        server, loop = self._server, self._loop
        if server is not None and loop is not None and not loop.is_closed():

            def shutdown() -> None:
                self._unlisten(abort=True)
                for conn in list(server.server_state.connections):
                    transport = getattr(conn, "transport", None)
                    if transport is not None:
                        transport.abort()
                server.should_exit = True

            with contextlib.suppress(RuntimeError):  # the loop just closed
                loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for sock in (self._api_sock, self._admin_sock):
            if sock.fileno() >= 0:
                sock.close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
