"""The admin HTTP API of live drill faults (see :mod:`drkit.gateway.live`).

Only admin keys (``serving.auth.admin_keys_env``) pass; a gateway without admin keys
answers 403 to every call, so live faults are off unless an operator turned them on.
Errors are JSON ``{"error": {"message", "hint", "status"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from drkit.errors import LiveFaultRefused
from drkit.gateway.live import LiveFault, LiveFaults, drill_view

Handler = Callable[[Request], Awaitable[Response]]


def _error(exc: LiveFaultRefused) -> Response:
    body: dict[str, Any] = {"message": str(exc), "status": exc.status}
    if exc.hint:
        body["hint"] = exc.hint
    return JSONResponse({"error": body}, status_code=exc.status)


def _guarded(live: LiveFaults, handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            if not live.enabled:
                raise LiveFaultRefused(
                    "live drill faults are off on this gateway: it has no admin keys",
                    status=403,
                    hint=f"export {live.config.admin_keys_env or 'DRKIT_GATEWAY_ADMIN_KEYS'}"
                    "=<key> where the gateway runs (serving.auth.admin_keys_env)",
                )
            if not live.admin.allows(request.headers):
                raise LiveFaultRefused(
                    "missing or wrong admin key (client keys cannot install live faults)",
                    status=401,
                    hint="send an admin key as Authorization: Bearer <key>",
                )
            return await handler(request)
        except LiveFaultRefused as exc:
            return _error(exc)

    return guarded


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LiveFaultRefused("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise LiveFaultRefused("the request body must be a JSON object")
    return body


def routes(live: LiveFaults) -> list[Route]:
    """The Starlette routes of the API, bound to one gateway's :class:`LiveFaults`."""

    def view(fault: LiveFault) -> dict[str, Any]:
        return fault.public(live.clock(), live.shared is not None)

    def drill(faults: list[LiveFault]) -> dict[str, Any]:
        return drill_view(faults, live.clock(), live.shared is not None)

    async def create(request: Request) -> Response:
        faults = await live.install(await _body(request))
        return JSONResponse(drill(faults), status_code=201)

    async def listing(request: Request) -> Response:
        return JSONResponse({"live_faults": [view(f) for f in live.faults()]})

    async def one(request: Request) -> Response:
        faults = [await live.figures_of(f) for f in live.find(request.path_params["drill"])]
        return JSONResponse(drill(faults))

    async def renew(request: Request) -> Response:
        body = await _body(request)
        lease = body.get("lease_s")
        if lease is not None and (isinstance(lease, bool) or not isinstance(lease, int | float)):
            raise LiveFaultRefused("`lease_s` must be a number")
        faults = await live.renew(request.path_params["drill"], lease)
        return JSONResponse(drill(faults))

    async def delete(request: Request) -> Response:
        faults = live.find(request.path_params["drill"])
        live.lift(faults[0], "aborted")  # lifts every route of the drill
        return JSONResponse(drill(faults))

    g = _guarded
    return [
        Route("/admin/live-faults", g(live, create), methods=["POST"]),
        Route("/admin/live-faults", g(live, listing), methods=["GET"]),
        Route("/admin/live-faults/{drill}", g(live, one), methods=["GET"]),
        Route("/admin/live-faults/{drill}", g(live, delete), methods=["DELETE"]),
        Route("/admin/live-faults/{drill}/renew", g(live, renew), methods=["POST"]),
    ]
