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
import hashlib
import json
import logging
import random
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from drkit.connectors.llm.faults import Fault
from drkit.connectors.llm.replies import Reply, make_reply
from drkit.connectors.llm.sse import Dialect
from drkit.connectors.llm.wire import (
    MALFORMED_SSE,
    anthropic_body,
    anthropic_events,
    default_message,
    error_response,
    openai_body,
    openai_events,
    retry_headers,
    stream_error_frame,
    validate,
)

log = logging.getLogger("drkit.simulator")


class _CutConnection(Exception):
    """Raised mid-response to make the server drop the connection (a stream cut)."""


class _QuietCut(logging.Filter):
    """Keep uvicorn from logging our deliberate connection drops as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _contains_cut(exc)


def _contains_cut(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, _CutConnection):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains_cut(e) for e in exc.exceptions)
    return _contains_cut(exc.__cause__ or exc.__context__)


class SimState:
    """Faults, counters and the seeded generator, shared by the app and its runner.

    Changes come from the admin API (event loop thread) and from :class:`ProviderSimulator`
    methods (any thread); a lock keeps them consistent.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        seed: int = 0,
        faults: Iterable[Fault] = (),
        mode: str = "lorem",
        api_key: str | None = None,
        token_delay: float = 0.0,
        models: Iterable[str] = ("sim-large", "sim-small"),
    ) -> None:
        self.dialect: Dialect = dialect
        self.seed = seed
        self.mode = mode
        self.api_key = api_key
        self.token_delay = token_delay
        self.models = list(models)
        self.lock = threading.Lock()
        self.faults: list[Fault] = list(faults)
        self.rng = random.Random(seed)
        self.counter = 0
        self.last_request: dict[str, Any] | None = None
        #: awaited (in the server's loop) when the ``refuse`` fault appears or disappears
        self.on_refuse: Callable[[bool], Awaitable[None]] | None = None
        self.reset_stats()

    def reset_stats(self) -> None:
        with self.lock:
            self.requests = 0
            self.by_endpoint: dict[str, int] = {}
            self.completed = 0
            self.in_flight = 0
            self.fired: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "dialect": self.dialect,
                "requests": self.requests,
                "by_endpoint": dict(self.by_endpoint),
                "completed": self.completed,
                "in_flight": self.in_flight,
                "faults_fired": dict(self.fired),
                "refusing": self.refusing,
            }

    @property
    def refusing(self) -> bool:
        return any(f.kind == "refuse" for f in self.faults)

    def set_faults(self, faults: Iterable[Fault]) -> bool:
        """Replace the rules; True when that switched ``refuse`` on or off."""
        with self.lock:
            before = self.refusing
            self.faults = list(faults)
            return before != self.refusing

    def next_id(self) -> str:
        with self.lock:
            self.counter += 1
            n = self.counter
        return hashlib.blake2b(f"{self.seed}:{n}".encode(), digest_size=12).hexdigest()

    def begin(self, endpoint: str) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def end(self, completed: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            if completed:
                self.completed += 1

    def pick(self) -> list[Fault]:
        """The faults that fire on this request (rate and first-N applied, seeded).

        Latency rules all apply; of the other rules, the first (in order) that fires wins.
        """
        chosen: list[Fault] = []
        decided = False  # the first terminal rule that fires wins; later ones are not drawn
        with self.lock:
            for fault in self.faults:
                if fault.kind == "refuse" or (decided and fault.kind != "latency"):
                    continue
                if fault.first is not None and fault.seen >= fault.first:
                    continue
                fault.seen += 1
                if fault.rate >= 1.0 or self.rng.random() < fault.rate:
                    fault.fired += 1
                    self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                    chosen.append(fault)
                    decided = decided or fault.kind != "latency"
        return chosen


def _authorized(state: SimState, request: Request) -> bool:
    # Anthropic takes x-api-key or (as its SDK 2.x sends) a bearer token; OpenAI a bearer
    auth = request.headers.get("authorization", "")
    key = auth[7:] if auth.lower().startswith("bearer ") else ""
    if state.dialect == "anthropic":
        key = request.headers.get("x-api-key", "") or key
    if not key:
        return False
    return state.api_key is None or key == state.api_key


# --- the app -----------------------------------------------------------------------------


async def _wait_disconnect(request: Request, timeout: float | None = None) -> None:
    """Park until the client goes away (or ``timeout`` passes)."""

    async def wait() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    if timeout is None:
        await wait()
    else:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait(), timeout)


def build_app(state: SimState) -> Starlette:
    """The simulator's ASGI app for ``state`` (API and admin routes)."""
    dialect = state.dialect

    async def chat(request: Request) -> Response:
        state.begin("chat")
        accounted = False
        try:
            response, accounted = await _chat(request)
            return response
        finally:
            if not accounted:
                state.end(False)

    async def _chat(request: Request) -> tuple[Response, bool]:
        faults = state.pick()
        if not _authorized(state, request):
            return error_response(
                dialect,
                401,
                "invalid x-api-key" if dialect == "anthropic" else "Incorrect API key provided",
            ), False
        if dialect == "anthropic" and not request.headers.get("anthropic-version"):
            return error_response(dialect, 400, "anthropic-version: header is required"), False
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return error_response(dialect, 400, "the request body is not valid JSON"), False
        with state.lock:
            state.last_request = body if isinstance(body, dict) else None
        problem = validate(dialect, body)
        if problem:
            return error_response(dialect, 400, problem), False
        for rule in faults:
            if rule.kind == "latency" and rule.delay:
                await asyncio.sleep(rule.delay)
        fault = next((f for f in faults if f.kind != "latency"), None)
        if fault is not None and fault.kind == "black_hole":
            await _wait_disconnect(request)
            return Response(status_code=204), False
        if fault is not None and (
            fault.kind == "error" or (fault.kind == "stream_error" and not body.get("stream"))
        ):
            return error_response(
                dialect, fault.status, fault.message or default_message(fault.status), fault.body
            ), False
        if fault is not None and fault.kind == "rate_limit":
            response = error_response(
                dialect, 429, fault.message or "Rate limit exceeded", fault.body
            )
            response.headers.update(retry_headers(fault.retry_after))
            return response, False
        rid = state.next_id()
        reply = make_reply(dialect, body, seed=state.seed, mode=state.mode)
        headers = {"request-id" if dialect == "anthropic" else "x-request-id": "req_" + rid}
        if body.get("stream"):
            return _stream(request, body, reply, rid, fault, headers), True  # gen() ends it
        payload = (
            openai_body(body, reply, rid)
            if dialect == "openai"
            else anthropic_body(body, reply, rid)
        )
        if fault is None:
            state.end(True)
            return JSONResponse(payload, headers=headers), True
        text = json.dumps(payload).encode()
        if fault.kind == "malformed":
            return Response(
                text[: len(text) // 2], media_type="application/json", headers=headers
            ), False
        return StreamingResponse(
            _partial_body(request, text, fault), media_type="application/json", headers=headers
        ), False

    async def _partial_body(request: Request, text: bytes, fault: Fault) -> AsyncIterator[bytes]:
        yield text[: len(text) // 2]
        if fault.kind == "stream_stall":
            await _wait_disconnect(request, fault.delay)
            if fault.delay is None:
                return
            yield text[len(text) // 2 :]
            return
        if fault.kind == "stream_cut" and fault.mode == "clean":
            return
        raise _CutConnection()

    def _stream(
        request: Request,
        body: dict[str, Any],
        reply: Reply,
        rid: str,
        fault: Fault | None,
        headers: dict[str, str],
    ) -> Response:
        frames = (
            openai_events(body, reply, rid)
            if dialect == "openai"
            else anthropic_events(body, reply, rid)
        )

        async def gen() -> AsyncIterator[bytes]:
            active = fault
            tokens = 0
            delay = state.token_delay
            done = False
            # without a token delay, frames go out in as few writes as possible (a simulator
            # must not be the bottleneck of a benchmark); a fault point flushes them first
            pending: list[bytes] = []
            try:
                for is_token, frame in frames:
                    if active is not None and is_token and tokens >= active.after:
                        if pending:
                            yield b"".join(pending)
                            pending = []
                        if active.kind == "stream_cut":
                            if active.mode == "clean":
                                return
                            raise _CutConnection()
                        if active.kind == "malformed":
                            yield MALFORMED_SSE[dialect]
                            return
                        if active.kind == "stream_error":
                            yield stream_error_frame(dialect, active)
                            return
                        if active.kind == "stream_stall":
                            await _wait_disconnect(request, active.delay)
                            if active.delay is None:
                                return
                            active = None
                    if is_token:
                        tokens += 1
                        if delay:
                            if pending:
                                yield b"".join(pending)
                                pending = []
                            await asyncio.sleep(delay)
                    pending.append(frame)
                if pending:
                    yield b"".join(pending)
                done = True
            finally:
                state.end(done)

        stream_headers = {**headers, "cache-control": "no-cache"}
        return StreamingResponse(gen(), media_type="text/event-stream", headers=stream_headers)

    async def models(request: Request) -> Response:
        state.begin("models")
        state.end(True)
        if not _authorized(state, request):
            return error_response(dialect, 401, "invalid API key")
        if dialect == "openai":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "drkit-sim"}
                for m in state.models
            ]
            return JSONResponse({"object": "list", "data": data})
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in state.models
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def faults_endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            if state.set_faults([]) and state.on_refuse is not None:
                await state.on_refuse(False)
        elif request.method in ("PUT", "POST"):
            try:
                payload = await request.json()
                items = (
                    payload.get("faults", payload)
                    if isinstance(payload, dict) and "kind" not in payload
                    else payload
                )
                if isinstance(items, dict):
                    items = [items]
                if not isinstance(items, list):
                    raise ValueError('expected a fault object, a list, or {"faults": [...]}')
                new = [Fault.from_dict(item) for item in items]
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            changed = state.set_faults(new if request.method == "PUT" else [*state.faults, *new])
            if changed and state.on_refuse is not None:
                await state.on_refuse(state.refusing)
        with state.lock:
            listed = [f.to_dict() for f in state.faults]
        return JSONResponse({"faults": listed})

    async def stats_endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            state.reset_stats()
        return JSONResponse(state.stats())

    async def last_endpoint(request: Request) -> Response:
        with state.lock:
            last = state.last_request
        return JSONResponse({"request": last})

    chat_path = "/v1/chat/completions" if dialect == "openai" else "/v1/messages"
    routes = [
        Route(chat_path, chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_sim/faults", faults_endpoint, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/stats", stats_endpoint, methods=["GET", "DELETE"]),
        Route("/_sim/last", last_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes)


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
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
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


_QUIET = _QuietCut()
