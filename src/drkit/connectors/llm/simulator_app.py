"""The provider simulator's ASGI app: the chat endpoints, the admin API and their state.

:func:`build_app` serves one :class:`SimState` (faults, counters, the last request);
:class:`drkit.connectors.llm.simulator.ProviderSimulator` runs it. See that module for
the endpoints and fault semantics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

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
    app = _SimApp(state)
    chat_path = "/v1/chat/completions" if state.dialect == "openai" else "/v1/messages"
    routes = [
        Route(chat_path, app.chat, methods=["POST"]),
        Route("/v1/models", app.models, methods=["GET"]),
        Route("/_sim/faults", app.faults_endpoint, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/_sim/stats", app.stats_endpoint, methods=["GET", "DELETE"]),
        Route("/_sim/last", app.last_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes)


class _SimApp:
    """The endpoints of one simulator, over its :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.dialect: Dialect = state.dialect

    # --- the chat endpoint -----------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        self.state.begin("chat")
        accounted = False
        try:
            response, accounted = await self._chat(request)
            return response
        finally:
            if not accounted:
                self.state.end(False)

    async def _chat(self, request: Request) -> tuple[Response, bool]:
        """The answer, and whether the request's end is accounted for (by the answer)."""
        state, dialect = self.state, self.dialect
        faults = state.pick()  # drawn first: a refused request still counts for first-N
        body = await self._checked_body(request)
        if isinstance(body, Response):
            return body, False
        for rule in faults:
            if rule.kind == "latency" and rule.delay:
                await asyncio.sleep(rule.delay)
        fault = next((f for f in faults if f.kind != "latency"), None)
        if fault is not None:
            failed = await self._fault_answer(request, body, fault)
            if failed is not None:
                return failed, False
        rid = state.next_id()
        reply = make_reply(dialect, body, seed=state.seed, mode=state.mode)
        if fault is not None and fault.kind == "wrong_answer":
            said = json.dumps(body.get("messages"), ensure_ascii=False).casefold()
            if (fault.topic is None or fault.topic.casefold() in said) and (
                fault.model is None or fault.model == body.get("model")
            ):
                reply = make_reply(dialect, body, seed=state.seed + 1_000_003, mode="lorem")
            fault = None
        headers = {"request-id" if dialect == "anthropic" else "x-request-id": "req_" + rid}
        if body.get("stream"):
            return self._stream(request, body, reply, rid, fault, headers), True  # gen() ends it
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

    async def _checked_body(self, request: Request) -> dict[str, Any] | Response:
        """The request's JSON body, or the provider's error answer (auth, version, shape)."""
        state, dialect = self.state, self.dialect
        if not _authorized(state, request):
            return error_response(
                dialect,
                401,
                "invalid x-api-key" if dialect == "anthropic" else "Incorrect API key provided",
            )
        if dialect == "anthropic" and not request.headers.get("anthropic-version"):
            return error_response(dialect, 400, "anthropic-version: header is required")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return error_response(dialect, 400, "the request body is not valid JSON")
        with state.lock:
            state.last_request = body if isinstance(body, dict) else None
        problem = validate(dialect, body)
        if problem:
            return error_response(dialect, 400, problem)
        return cast(dict[str, Any], body)  # validate() checked that it is an object

    async def _fault_answer(
        self, request: Request, body: dict[str, Any], fault: Fault
    ) -> Response | None:
        """The answer of a fault that replaces the reply (none for those that alter it)."""
        dialect = self.dialect
        if fault.kind == "black_hole":
            await _wait_disconnect(request)
            return Response(status_code=204)
        if fault.kind == "error" or (fault.kind == "stream_error" and not body.get("stream")):
            return error_response(
                dialect, fault.status, fault.message or default_message(fault.status), fault.body
            )
        if fault.kind == "rate_limit":
            response = error_response(
                dialect, 429, fault.message or "Rate limit exceeded", fault.body
            )
            response.headers.update(retry_headers(fault.retry_after))
            return response
        return None

    def _stream(
        self,
        request: Request,
        body: dict[str, Any],
        reply: Reply,
        rid: str,
        fault: Fault | None,
        headers: dict[str, str],
    ) -> Response:
        state, dialect = self.state, self.dialect
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

    # --- the other endpoints ---------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        state = self.state
        state.begin("models")
        state.end(True)
        if not _authorized(state, request):
            return error_response(self.dialect, 401, "invalid API key")
        if self.dialect == "openai":
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

    async def faults_endpoint(self, request: Request) -> Response:
        state = self.state
        if request.method == "DELETE":
            if state.set_faults([]) and state.on_refuse is not None:
                await state.on_refuse(False)
        elif request.method in ("PUT", "POST"):
            try:
                new = _faults_of(await request.json())
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            changed = state.set_faults(new if request.method == "PUT" else [*state.faults, *new])
            if changed and state.on_refuse is not None:
                await state.on_refuse(state.refusing)
        with state.lock:
            listed = [f.to_dict() for f in state.faults]
        return JSONResponse({"faults": listed})

    async def stats_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.reset_stats()
        return JSONResponse(self.state.stats())

    async def last_endpoint(self, request: Request) -> Response:
        with self.state.lock:
            last = self.state.last_request
        return JSONResponse({"request": last})


def _faults_of(payload: Any) -> list[Fault]:
    """The faults of an admin request: a fault object, a list, or ``{"faults": [...]}``."""
    items = (
        payload.get("faults", payload)
        if isinstance(payload, dict) and "kind" not in payload
        else payload
    )
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ValueError('expected a fault object, a list, or {"faults": [...]}')
    return [Fault.from_dict(item) for item in items]


async def _partial_body(request: Request, text: bytes, fault: Fault) -> AsyncIterator[bytes]:
    """Half a non-streamed answer, then the fault: a stall, a clean end or a cut."""
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


#: Keeps uvicorn from logging the connections the simulator cuts on purpose.
QUIET_CUTS = _QuietCut()
