"""What every handler of the status page shares: the plan and state it reads, the
templates it renders, the key check of the internal side and its form handling."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from drkit.errors import DrkitError
from drkit.plan.models import Plan
from drkit.state.store import StateStore
from drkit.status import api
from drkit.status.incidents import Incidents
from drkit.status.page import Snapshot, snapshot
from drkit.web.auth import Caller, KeyCheck

MAX_BODY = 16 * 1024
_TEMPLATES = Path(__file__).parent / "templates"


def _fmt(epoch: float | None) -> str:
    return "" if epoch is None else f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _day(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%b %d, %Y}"


async def bounded(request: Request) -> bytes | None:
    """The body, or None when it is over :data:`MAX_BODY` bytes (nothing more is read)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return None
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return None
    return raw


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def cross_origin(request: Request) -> Response | None:
    """A 403 for a form posted from another origin, else None."""
    origin = request.headers.get("origin")
    if origin and origin.rstrip("/") != base_url(request):
        return PlainTextResponse("cross-origin form refused", status_code=403)
    return None


class Site:
    """The status page's shared parts; the handlers are in :mod:`drkit.web.public`,
    :mod:`drkit.web.internal` and :mod:`drkit.web.subscribe`."""

    def __init__(
        self,
        plan: Plan,
        state: StateStore,
        keys: KeyCheck,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan, self.state, self.keys, self.clock = plan, state, keys, clock
        self.env = Environment(
            loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True)
        )
        self.env.globals.update(fmt=_fmt, day=_day, iso=api.iso)
        self.book = Incidents(state, [c.name for c in plan.status_page.components])

    def snap(self) -> Snapshot:
        return snapshot(self.plan, self.state, now=self.clock())

    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = ctx.get("snap")
        if s is not None:
            ctx.setdefault("indicator", api.INDICATOR[s.state][1])
        html = self.env.get_template(name).render(title=self.plan.status_page.title, **ctx)
        return HTMLResponse(html, status_code=status)

    def caller_of(self, request: Request) -> Caller | Response:
        """The internal side's caller, or the 401/403 to answer with."""
        got = self.keys.check(request.headers.get("authorization"))
        if got is None:
            return PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="drkit status (internal)"'},
            )
        if got is False or isinstance(got, bool):
            return PlainTextResponse("wrong key", status_code=403)
        return got

    async def form_of(self, request: Request, caller: Caller) -> dict[str, str] | Response:
        """The posted form of an internal write (bounded, same origin, CSRF-checked)."""
        raw = await bounded(request)
        if raw is None:
            return PlainTextResponse("body too large", status_code=413)
        refused = cross_origin(request)
        if refused is not None:
            return refused
        form = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        if not self.keys.csrf_ok(caller, form.get("csrf", "")):
            return PlainTextResponse("missing or wrong CSRF token", status_code=403)
        return form

    async def write(
        self, request: Request, action: Callable[[dict[str, str], Caller], str]
    ) -> Response:
        """An internal write: authenticate, read the form, act, redirect to where it says."""
        caller = self.caller_of(request)
        if isinstance(caller, Response):
            return caller
        form = await self.form_of(request, caller)
        if isinstance(form, Response):
            return form
        try:
            where = action(form, caller)
        except DrkitError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        return RedirectResponse(where, status_code=303)
