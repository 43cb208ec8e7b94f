"""Subscriptions on the public side: sign-up with a confirmation link, and the
unsubscribe link of every notice. Both links confirm with a form: mail scanners follow
links, not forms."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from drkit.errors import DrkitError
from drkit.status import notify, subscriptions
from drkit.web.site import Site, bounded, cross_origin


class Subscribe:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/unsubscribe", self.unsubscribe, methods=["GET", "POST"]),
            Route("/subscribe", self.subscribe, methods=["POST"]),
            Route("/subscribe/confirm", self.subscribe_confirm, methods=["GET", "POST"]),
        ]

    def _unsubscribe_ok(self, request: Request) -> str | None:
        """The subscriber an unsubscribe link names, when its token is right."""
        site = self.site
        name = request.query_params.get("s", "")
        token = request.query_params.get("t", "")
        link_key = site.keys.link_key
        known = {c.name for c in site.plan.status_page.subscribers}
        known |= {c.name for c in subscriptions.active(site.state)}
        if not link_key or name not in known:
            return None
        if not hmac.compare_digest(notify.unsubscribe_token(link_key, name), token):
            return None
        return name

    async def unsubscribe(self, request: Request) -> Response:
        site = self.site
        name = self._unsubscribe_ok(request)
        if name is None:
            return PlainTextResponse("this unsubscribe link is not valid", status_code=403)
        if request.method == "GET":  # a confirm step
            return site.render(
                "unsubscribe.html",
                who=name,
                action=f"/unsubscribe?{request.url.query}",
                done=name in notify.unsubscribed(site.state),
            )
        if name not in notify.unsubscribed(site.state):
            site.state.record_event(
                "subscriber.unsubscribed", name, f"{name} unsubscribed", {"via": "link"}
            )
        return site.render("unsubscribe.html", who=name, action="", done=True)

    async def subscribe(self, request: Request) -> Response:
        site = self.site
        if not subscriptions.enabled(site.plan, site.keys.link_key):
            return PlainTextResponse("subscriptions are not offered here", status_code=404)
        refused = cross_origin(request)
        if refused is not None:
            return refused
        raw = await bounded(request)
        if raw is None:
            return PlainTextResponse("body too large", status_code=413)
        form = parse_qs(raw.decode(errors="replace"))
        try:
            subscriptions.request(
                site.plan,
                site.state,
                (form.get("email") or [""])[-1],
                form.get("component", []),
                now=site.clock(),
            )
        except DrkitError as exc:
            return site.render("subscribe.html", status=exc.status, error=str(exc))
        return site.render("subscribe.html", sent=True)

    async def subscribe_confirm(self, request: Request) -> Response:
        site = self.site
        link_key = site.keys.link_key
        try:
            rid = int(request.query_params.get("r", ""))
        except ValueError:
            rid = 0
        tok = request.query_params.get("t", "")
        found = subscriptions.pending(site.state, rid)
        if (
            link_key is None
            or found is None
            or not hmac.compare_digest(subscriptions.token(link_key, rid, found.email), tok)
        ):
            return PlainTextResponse("this confirmation link is not valid", status_code=403)
        if request.method == "GET":  # a confirm step
            return site.render("subscribe.html", confirm=f"/subscribe/confirm?{request.url.query}")
        try:
            subscriptions.confirm(site.state, link_key, rid, tok, now=site.clock())
        except DrkitError as exc:
            return site.render("subscribe.html", status=exc.status, error=str(exc))
        return site.render("subscribe.html", confirmed=True)
