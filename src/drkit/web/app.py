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

from starlette.applications import Starlette

from drkit.errors import DrkitError
from drkit.plan.models import Plan
from drkit.state.store import StateStore
from drkit.status import notify, subscriptions
from drkit.status.page import draft_incidents, snapshot
from drkit.web.auth import KeyCheck
from drkit.web.internal import Internal
from drkit.web.public import Public
from drkit.web.site import MAX_BODY, Site
from drkit.web.subscribe import Subscribe

__all__ = ["MAX_BODY", "create_app", "from_env"]
log = logging.getLogger("drkit.status")


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
    site = Site(plan, state, keys or KeyCheck.from_env(), clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if draft_every:
            task = asyncio.create_task(
                _drafting(plan, state, clock, draft_every, link_key=site.keys.link_key)
            )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [*Public(site).routes(), *Subscribe(site).routes(), *Internal(site).routes()]
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
    plan: Plan,
    state: StateStore,
    clock: Callable[[], float],
    every: float,
    *,
    link_key: bytes | None = None,
) -> None:
    """Every ``every`` seconds: draft incidents from signals, then send the notices due
    (in a thread: a slow mail relay never blocks a request)."""
    while True:
        try:
            s = await asyncio.to_thread(snapshot, plan, state, now=clock())
            for inc in await asyncio.to_thread(draft_incidents, plan, state, s):
                log.warning("drafted incident %s: %s (%s)", inc.id, inc.title, inc.cause)
            if (
                plan.status_page.subscribers
                or plan.status_page.escalation
                or subscriptions.enabled(plan, link_key)
            ):
                s = await asyncio.to_thread(snapshot, plan, state, now=clock())
                for o in await asyncio.to_thread(
                    notify.deliver, plan, state, s, now=clock(), link_key=link_key
                ):
                    if not o.ok:
                        log.warning("notice %s failed: %s", o.notice.key, o.error)
            if subscriptions.enabled(plan, link_key):
                await asyncio.to_thread(
                    subscriptions.send_confirmations, plan, state, link_key, now=clock()
                )
        except DrkitError as exc:  # a state hiccup must not stop the page
            log.warning("drafting incidents failed: %s", exc)
        await asyncio.sleep(every)
