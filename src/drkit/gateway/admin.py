"""The gateway's endpoints besides the two chat ones: models, health, metrics, admin.

::

    GET  /v1/models             the route names (authenticated)
    GET  /healthz               the process is up
    GET  /readyz                200 when every route has at least one target in service
    GET  /metrics               Prometheus text format
    GET  /admin/targets         each target's health state and live fault (authenticated)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from drkit.gateway.chat import UNAUTHORIZED
from drkit.gateway.config import Dialect
from drkit.gateway.dialects import error_body

if TYPE_CHECKING:
    from drkit.gateway.app import Gateway


def _unauthorized(dialect: Dialect) -> Response:
    return JSONResponse(
        error_body(dialect, UNAUTHORIZED.status, str(UNAUTHORIZED)),
        status_code=UNAUTHORIZED.status,
    )


class AdminEndpoints:
    """The Starlette endpoints of one :class:`~drkit.gateway.app.Gateway`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/admin/targets", self.targets, methods=["GET"]),
        ]

    async def models(self, request: Request) -> Response:
        gw = self.gw
        if not gw.auth.allows(request.headers):
            return _unauthorized("openai")
        data = [
            {
                "id": r.name,
                "object": "model",
                "type": "model",
                "created": 0,
                "created_at": "1970-01-01T00:00:00Z",
                "display_name": r.name,
                "owned_by": "drkit",
            }
            for r in gw.config.routes
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        gw = self.gw
        routes = {
            r.name: [t.name for t in r.targets if gw.board.is_available(t.name)]
            for r in gw.config.routes
        }
        ready = all(routes.values())
        return JSONResponse({"ready": ready, "routes": routes}, status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        gw = self.gw
        for name in gw.board.health:
            gw.metrics.target_demoted(name, name in gw.board.demoted)
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")

    async def targets(self, request: Request) -> Response:
        gw = self.gw
        if not (gw.auth.allows(request.headers) or gw.live.admin.allows(request.headers)):
            return _unauthorized("openai")
        targets = gw.board.snapshot()
        faults = list(gw.live.by_route.values())
        for t in targets:  # a live drill's fault shows on the targets it fails, whose it is
            t["live_fault"] = next(
                (
                    {"drill": f.drill, "owner": f.owner, "route": f.route, "fraction": f.fraction}
                    for f in faults
                    if t["name"] in f.targets
                ),
                None,
            )
        return JSONResponse(
            {
                "targets": targets,
                "live_faults": [f.public(gw.live.clock()) for f in faults],
                "retry_budget": gw.budget.snapshot(),
                "shared_state": "redis" if gw.config.redis_url else "local",
                "status_feeds": gw.feeds.snapshot(),
                "quality": gw.canary.snapshot() if gw.canary is not None else [],
            }
        )
