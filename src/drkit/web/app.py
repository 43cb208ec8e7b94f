"""The status page as one ASGI app (starlette): the public page, its Statuspage-shaped JSON
API and Atom feed, and the authenticated internal side (incidents, drafts, the war room).

Server-rendered with jinja2 (autoescaped), no JavaScript. Every write is a POST to the
internal side with the key (:mod:`drkit.web.auth`) and the form's CSRF token; bodies over
:data:`MAX_BODY` bytes are refused (413). The page reads drkit's state on each request, so
it shows what the gateway, drills, evals and the agent wrote a moment ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from drkit.errors import DrkitError
from drkit.plan.models import Plan
from drkit.state.store import StateStore
from drkit.status import api
from drkit.status.incidents import ROLES, STATUSES, Incidents
from drkit.status.page import Snapshot, draft_incidents, snapshot, timeline
from drkit.web.auth import Caller, KeyCheck

MAX_BODY = 16 * 1024
log = logging.getLogger("drkit.status")
_TEMPLATES = Path(__file__).parent / "templates"


def _fmt(epoch: float | None) -> str:
    return "" if epoch is None else f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _day(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%b %d, %Y}"


def create_app(
    plan: Plan,
    state: StateStore,
    *,
    keys: KeyCheck | None = None,
    draft_every: float | None = 5.0,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The app; ``draft_every`` seconds a background task drafts incidents from signals
    (``None``: never, e.g. in tests that draft by hand)."""
    keys = keys or KeyCheck.from_env()
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True)
    )
    env.globals.update(fmt=_fmt, day=_day, iso=api.iso)
    book = Incidents(state, [c.name for c in plan.status_page.components])

    def snap() -> Snapshot:
        return snapshot(plan, state, now=clock())

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = ctx.get("snap")
        if s is not None:
            ctx.setdefault("indicator", api.INDICATOR[s.state][1])
        html = env.get_template(name).render(title=plan.status_page.title, **ctx)
        return HTMLResponse(html, status_code=status)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def index(request: Request) -> Response:
        return render("page.html", snap=snap())

    async def incident_page(request: Request) -> Response:
        s = snap()
        inc = next((i for i in s.public_incidents if i.id == request.path_params["id"]), None)
        if inc is None:
            return PlainTextResponse("no such incident", status_code=404)
        return render("incident.html", snap=s, inc=inc)

    async def summary(request: Request) -> Response:
        return JSONResponse(api.summary(snap(), base_url(request)))

    async def status_json(request: Request) -> Response:
        s = snap()
        return JSONResponse({"page": api.page(s, base_url(request)), "status": api.status(s)})

    async def components_json(request: Request) -> Response:
        s = snap()
        return JSONResponse(
            {"page": api.page(s, base_url(request)), "components": api.components(s)}
        )

    async def incidents_json(request: Request) -> Response:
        return JSONResponse(api.incidents(snap(), base_url(request)))

    async def unresolved_json(request: Request) -> Response:
        s = snap()
        url = base_url(request)
        return JSONResponse(
            {"page": api.page(s, url), "incidents": [api.incident(s, i, url) for i in s.unresolved]}
        )

    async def atom(request: Request) -> Response:
        s = snap()
        text = env.get_template("feed.atom").render(
            title=plan.status_page.title,
            url=base_url(request),
            incidents=s.public_incidents[:50],
            updated=api.iso(
                max(
                    [s.now - 0.0]
                    if not s.public_incidents
                    else [i.updated_at for i in s.public_incidents]
                )
            ),
        )
        return Response(text, media_type="application/atom+xml")

    # --- internal side -----------------------------------------------------------------

    def caller_of(request: Request) -> Caller | Response:
        got = keys.check(request.headers.get("authorization"))
        if got is None:
            return PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="drkit status (internal)"'},
            )
        if got is False or isinstance(got, bool):
            return PlainTextResponse("wrong key", status_code=403)
        return got

    async def form_of(request: Request, caller: Caller) -> dict[str, str] | Response:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("body too large", status_code=413)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return PlainTextResponse("body too large", status_code=413)
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") != base_url(request):
            return PlainTextResponse("cross-origin form refused", status_code=403)
        form = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        if not keys.csrf_ok(caller, form.get("csrf", "")):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        return form

    async def internal(request: Request) -> Response:
        caller = caller_of(request)
        if isinstance(caller, Response):
            return caller
        return render("internal.html", snap=snap(), caller=caller, csrf=keys.csrf(caller))

    async def warroom(request: Request) -> Response:
        caller = caller_of(request)
        if isinstance(caller, Response):
            return caller
        s = snap()
        inc = next((i for i in s.incidents if i.id == request.path_params["id"]), None)
        if inc is None:
            return PlainTextResponse("no such incident", status_code=404)
        return render(
            "warroom.html",
            snap=s,
            inc=inc,
            caller=caller,
            csrf=keys.csrf(caller),
            timeline=timeline(plan, state, inc, now=s.now),
            statuses=STATUSES,
            roles=ROLES,
        )

    async def write(request: Request, action: Callable[[dict[str, str], Caller], str]) -> Response:
        caller = caller_of(request)
        if isinstance(caller, Response):
            return caller
        form = await form_of(request, caller)
        if isinstance(form, Response):
            return form
        try:
            where = action(form, caller)
        except DrkitError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        return RedirectResponse(where, status_code=303)

    async def open_incident(request: Request) -> Response:
        def act(f: dict[str, str], c: Caller) -> str:
            inc = book.open(
                f.get("title", ""),
                components=[f.get("component", "")],
                severity=f.get("severity", "sev3"),
                body=f.get("body", ""),
                author=c.name,
            )
            return f"/internal/incidents/{inc.id}"

        return await write(request, act)

    async def post_update(request: Request) -> Response:
        inc_id = request.path_params["id"]

        def act(f: dict[str, str], c: Caller) -> str:
            book.update(
                inc_id,
                f.get("status", ""),
                f.get("body", ""),
                author=c.name,
                draft=f.get("draft") == "1",
            )
            return f"/internal/incidents/{inc_id}"

        return await write(request, act)

    async def approve(request: Request) -> Response:
        inc_id = request.path_params["id"]

        def act(f: dict[str, str], c: Caller) -> str:
            book.approve(inc_id, f.get("update") or None, by=c.name)
            return f"/internal/incidents/{inc_id}"

        return await write(request, act)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if draft_every:
            task = asyncio.create_task(_drafting(plan, state, clock, draft_every))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [
        Route("/", index),
        Route("/incidents/{id}", incident_page),
        Route("/api/v2/summary.json", summary),
        Route("/api/v2/status.json", status_json),
        Route("/api/v2/components.json", components_json),
        Route("/api/v2/incidents.json", incidents_json),
        Route("/api/v2/incidents/unresolved.json", unresolved_json),
        Route("/history.atom", atom),
        Route("/healthz", healthz),
        Route("/internal", internal),
        Route("/internal/incidents", open_incident, methods=["POST"]),
        Route("/internal/incidents/{id}", warroom),
        Route("/internal/incidents/{id}/updates", post_update, methods=["POST"]),
        Route("/internal/incidents/{id}/approve", approve, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def from_env() -> Starlette:
    """The app of ``drkit status serve``: the plan at ``$DRKIT_STATUS_PLAN`` (default
    ``./drkit.yaml``), its state, the key from ``$DRKIT_STATUS_KEY``."""
    import os

    from drkit.plan.loader import load_plan
    from drkit.state.store import plan_state_location

    plan = load_plan(os.environ.get("DRKIT_STATUS_PLAN", "drkit.yaml"))
    return create_app(plan, StateStore(plan_state_location(plan)))


async def _drafting(
    plan: Plan, state: StateStore, clock: Callable[[], float], every: float
) -> None:
    while True:
        try:
            s = await asyncio.to_thread(snapshot, plan, state, now=clock())
            for inc in await asyncio.to_thread(draft_incidents, plan, state, s):
                log.warning("drafted incident %s: %s (%s)", inc.id, inc.title, inc.cause)
        except DrkitError as exc:  # a state hiccup must not stop the page
            log.warning("drafting incidents failed: %s", exc)
        await asyncio.sleep(every)
