"""The authenticated internal side of the status page: the incident list, the war room,
the customer briefing and every write (open, update, approve, roles, discard)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from drkit.status import notify
from drkit.status.incidents import ROLES, STATUSES
from drkit.status.page import timeline
from drkit.web.auth import Caller
from drkit.web.site import Site

_Form = dict[str, str]
#: a write on one incident: its id, the posted form, the caller
_IncidentAction = Callable[[str, _Form, Caller], None]


class Internal:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/internal", self.internal),
            Route("/internal/briefing", self.briefing),
            Route("/internal/incidents", self.open_incident, methods=["POST"]),
            Route("/internal/incidents/{id}", self.warroom),
            Route("/internal/incidents/{id}/updates", self.post_update, methods=["POST"]),
            Route("/internal/incidents/{id}/approve", self.approve, methods=["POST"]),
            Route("/internal/incidents/{id}/discard", self.discard, methods=["POST"]),
            Route("/internal/incidents/{id}/roles", self.set_role, methods=["POST"]),
        ]

    async def internal(self, request: Request) -> Response:
        site = self.site
        caller = site.caller_of(request)
        if isinstance(caller, Response):
            return caller
        return site.render(
            "internal.html", snap=site.snap(), caller=caller, csrf=site.keys.csrf(caller)
        )

    async def warroom(self, request: Request) -> Response:
        site = self.site
        caller = site.caller_of(request)
        if isinstance(caller, Response):
            return caller
        s = site.snap()
        inc = next((i for i in s.incidents if i.id == request.path_params["id"]), None)
        if inc is None:
            return PlainTextResponse("no such incident", status_code=404)
        return site.render(
            "warroom.html",
            snap=s,
            inc=inc,
            caller=caller,
            csrf=site.keys.csrf(caller),
            timeline=timeline(site.plan, site.state, inc, now=s.now),
            statuses=STATUSES,
            roles=ROLES,
        )

    async def briefing(self, request: Request) -> Response:
        site = self.site
        caller = site.caller_of(request)
        if isinstance(caller, Response):
            return caller
        s = site.snap()
        rows = []
        for inc in (i for i in s.incidents if not i.closed):
            customers = [
                c.name
                for c in site.plan.status_page.escalation
                if not c.components or set(c.components) & set(inc.components)
            ]
            rows.append((inc, customers, notify.deliveries(site.state, inc.id)))
        return site.render("briefing.html", snap=s, caller=caller, rows=rows)

    async def open_incident(self, request: Request) -> Response:
        def act(f: _Form, c: Caller) -> str:
            inc = self.site.book.open(
                f.get("title", ""),
                components=[f.get("component", "")],
                severity=f.get("severity", "sev3"),
                body=f.get("body", ""),
                author=c.name,
            )
            return f"/internal/incidents/{inc.id}"

        return await self.site.write(request, act)

    async def post_update(self, request: Request) -> Response:
        def act(inc_id: str, f: _Form, c: Caller) -> None:
            book = self.site.book
            draft = f.get("draft") == "1"
            book.update(inc_id, f.get("status", ""), f.get("body", ""), author=c.name, draft=draft)

        return await self._on_incident(request, act)

    async def approve(self, request: Request) -> Response:
        def act(inc_id: str, f: _Form, c: Caller) -> None:
            self.site.book.approve(inc_id, f.get("update") or None, by=c.name)

        return await self._on_incident(request, act)

    async def set_role(self, request: Request) -> Response:
        def act(inc_id: str, f: _Form, c: Caller) -> None:
            self.site.book.set_role(inc_id, f.get("role", ""), f.get("person", ""))

        return await self._on_incident(request, act)

    async def discard(self, request: Request) -> Response:
        def act(inc_id: str, f: _Form, c: Caller) -> None:
            self.site.book.discard(inc_id, f.get("reason", ""), by=c.name)

        return await self._on_incident(request, act)

    async def _on_incident(self, request: Request, action: _IncidentAction) -> Response:
        """A write on the incident of the path; back to its war room after."""
        inc_id = request.path_params["id"]

        def act(f: _Form, c: Caller) -> str:
            action(inc_id, f, c)
            return f"/internal/incidents/{inc_id}"

        return await self.site.write(request, act)
