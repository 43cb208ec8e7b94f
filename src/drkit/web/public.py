"""The public side of the status page: the page, incident pages, published postmortems,
the Statuspage-shaped JSON API and the Atom feed."""

from __future__ import annotations

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from drkit.status import api, postmortem, subscriptions
from drkit.web.site import Site, base_url


class Public:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index),
            Route("/incidents/{id}", self.incident_page),
            Route("/incidents/{id}/postmortem", self.postmortem_page),
            Route("/api/v2/summary.json", self.summary),
            Route("/api/v2/status.json", self.status_json),
            Route("/api/v2/components.json", self.components_json),
            Route("/api/v2/incidents.json", self.incidents_json),
            Route("/api/v2/incidents/unresolved.json", self.unresolved_json),
            Route("/history.atom", self.atom),
            Route("/healthz", self.healthz),
        ]

    async def index(self, request: Request) -> Response:
        site = self.site
        enabled = subscriptions.enabled(site.plan, site.keys.link_key)
        return site.render("page.html", snap=site.snap(), subscribe=enabled)

    async def incident_page(self, request: Request) -> Response:
        s = self.site.snap()
        inc = next((i for i in s.public_incidents if i.id == request.path_params["id"]), None)
        if inc is None:
            return PlainTextResponse("no such incident", status_code=404)
        return self.site.render(
            "incident.html",
            snap=s,
            inc=inc,
            postmortem=postmortem.published(self.site.state, inc.id) is not None,
        )

    async def postmortem_page(self, request: Request) -> Response:
        s = self.site.snap()
        inc = next((i for i in s.public_incidents if i.id == request.path_params["id"]), None)
        got = postmortem.published(self.site.state, inc.id) if inc is not None else None
        if inc is None or got is None:
            return PlainTextResponse("no published postmortem", status_code=404)
        return self.site.render(
            "postmortem_public.html",
            snap=s,
            inc=inc,
            at=got[0],
            body=Markup(postmortem.to_html(got[1])),  # rendered with raw HTML escaped
        )

    async def summary(self, request: Request) -> Response:
        return JSONResponse(api.summary(self.site.snap(), base_url(request)))

    async def status_json(self, request: Request) -> Response:
        s = self.site.snap()
        return JSONResponse({"page": api.page(s, base_url(request)), "status": api.status(s)})

    async def components_json(self, request: Request) -> Response:
        s = self.site.snap()
        return JSONResponse(
            {"page": api.page(s, base_url(request)), "components": api.components(s)}
        )

    async def incidents_json(self, request: Request) -> Response:
        return JSONResponse(api.incidents(self.site.snap(), base_url(request)))

    async def unresolved_json(self, request: Request) -> Response:
        s = self.site.snap()
        url = base_url(request)
        return JSONResponse(
            {"page": api.page(s, url), "incidents": [api.incident(s, i, url) for i in s.unresolved]}
        )

    async def atom(self, request: Request) -> Response:
        s = self.site.snap()
        incidents = s.public_incidents
        text = self.site.env.get_template("feed.atom").render(
            title=self.site.plan.status_page.title,
            url=base_url(request),
            incidents=incidents[:50],
            updated=api.iso(
                max([s.now - 0.0] if not incidents else [i.updated_at for i in incidents])
            ),
        )
        return Response(text, media_type="application/atom+xml")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})
