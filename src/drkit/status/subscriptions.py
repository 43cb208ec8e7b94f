"""Self-service email subscriptions, confirmed by the subscriber (double opt-in).

Anyone may ask on the public page for notices about some components (all when none is
chosen): ``subscriber.requested`` (subject ``email-<hash>``; data email, components). The
page's background task mails a confirmation link (``subscriber.confirm_sent``); the link
opens a form whose POST records ``subscriber.confirmed``, within :data:`CONFIRM_WITHIN_S`.
Only then do notices go out (as to the plan's subscribers), each with its unsubscribe
link; ``subscriber.unsubscribed`` ends it, and a later confirmed request starts it again.

Links are HMACs under the page's link key (derived from ``DRKIT_STATUS_KEY``) and point
at ``status_page.url`` only, never at the address a request claimed (no phishing through
a forged Host header): without both, the subscribe form is off. A repeated request for an
address within :data:`REQUEST_EVERY_S` sends no second mail (the form cannot be used to
flood an inbox).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from drkit.errors import InputError
from drkit.status import notify

if TYPE_CHECKING:
    from drkit.plan.models import Plan, StatusContact
    from drkit.state.store import Event, StateStore

CONFIRM_WITHIN_S = 48 * 3600.0
REQUEST_EVERY_S = 3600.0
MAX_SEND_ATTEMPTS = 3
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$")


def name_of(email: str) -> str:
    return "email-" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]


def token(link_key: bytes, request_id: int, email: str) -> str:
    msg = f"confirm\0{request_id}\0{email.lower()}".encode()
    return hmac.new(link_key, msg, hashlib.sha256).hexdigest()


def enabled(plan: Plan, link_key: bytes | None) -> bool:
    return bool(link_key and plan.status_page.url)


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    at: float
    name: str
    email: str
    components: list[str]


def _requests(state: StateStore) -> list[Request]:
    return [
        Request(
            e.id,
            e.at,
            e.component,
            str(e.data.get("email", "")),
            [str(c) for c in e.data.get("components", [])],
        )
        for e in state.events(kind="subscriber.requested")
    ]


def request(
    plan: Plan, state: StateStore, email: str, components: Sequence[str], *, now: float
) -> Request:
    """Record a request (validated); an address asked for within the hour gets the
    pending request back, and no second mail."""
    email = email.strip()
    if not _EMAIL.match(email):
        raise InputError("that is not an email address", hint="name@example.com")
    shown = [c.name for c in plan.status_page.components]
    unknown = [c for c in components if c not in shown]
    if unknown:
        raise InputError(
            f"unknown status component {unknown[0]!r}", hint="choose among the page's components"
        )
    name = name_of(email)
    for r in reversed(_requests(state)):
        if r.name == name and now - r.at < REQUEST_EVERY_S:
            return r
    state.record_event(
        "subscriber.requested",
        name,
        "subscription requested",
        {"email": email, "components": list(components)},
        at=now,
    )
    return _requests(state)[-1]


def confirm(state: StateStore, link_key: bytes, request_id: int, tok: str, *, now: float) -> str:
    """Confirm a request by its link; returns the subscriber's name."""
    found = next((r for r in _requests(state) if r.id == request_id), None)
    if found is None or not hmac.compare_digest(token(link_key, found.id, found.email), tok):
        raise InputError("this confirmation link is not valid", hint="subscribe again")
    if now - found.at > CONFIRM_WITHIN_S:
        raise InputError("this confirmation link has expired", hint="subscribe again")
    done = {int(e.data.get("request", 0)) for e in state.events(kind="subscriber.confirmed")}
    if found.id not in done:
        state.record_event(
            "subscriber.confirmed", found.name, "subscription confirmed", {"request": found.id}
        )
    return found.name


def pending(state: StateStore, request_id: int) -> Request | None:
    return next((r for r in _requests(state) if r.id == request_id), None)


def active(state: StateStore) -> list[StatusContact]:
    """Confirmed self-service subscribers not unsubscribed since, as contacts."""
    from drkit.plan.models import StatusContact

    by_id = {r.id: r for r in _requests(state)}
    events: list[Event] = state.events(kind="subscriber.")
    current: dict[str, Request | None] = {}
    for e in events:
        if e.kind == "subscriber.confirmed":
            current[e.component] = by_id.get(int(e.data.get("request", 0)))
        elif e.kind == "subscriber.unsubscribed" and e.component in current:
            current[e.component] = None
    return [
        StatusContact(name=r.name, email=r.email, components=r.components)
        for r in current.values()
        if r is not None
    ]


def send_confirmations(
    plan: Plan, state: StateStore, link_key: bytes | None, *, now: float | None = None
) -> int:
    """Mail the confirmation link of each request not mailed yet; returns how many."""
    if not link_key or not plan.status_page.url:
        return 0
    now = time.time() if now is None else now
    sent: set[int] = set()
    tries: dict[int, int] = {}
    for e in state.events(kind="subscriber."):
        rid = int(e.data.get("request", 0))
        if e.kind == "subscriber.confirm_sent":
            sent.add(rid)
        elif e.kind == "subscriber.confirm_failed":
            tries[rid] = tries.get(rid, 0) + 1
    n = 0
    url = plan.status_page.url.rstrip("/")
    for r in _requests(state):
        if r.id in sent or tries.get(r.id, 0) >= MAX_SEND_ATTEMPTS:
            continue
        if now - r.at > CONFIRM_WITHIN_S:
            continue
        link = f"{url}/subscribe/confirm?r={r.id}&t={token(link_key, r.id, r.email)}"
        msg = EmailMessage()
        msg["Subject"] = f"[{plan.status_page.title}] Confirm your subscription"
        msg["From"] = plan.status_page.smtp.sender
        msg["To"] = r.email
        which = ", ".join(r.components) or "every component"
        msg.set_content(
            f"Someone (we hope you) asked for incident notices from {plan.status_page.title} "
            f"about {which}.\n\nConfirm: {link}\n\nIf it was not you, ignore this mail: "
            "nothing will be sent.\n"
        )
        try:
            notify.send_mail(plan.status_page.smtp, msg)
        except OSError as exc:
            state.record_event(
                "subscriber.confirm_failed",
                r.name,
                f"confirmation mail failed: {type(exc).__name__}",
                {"request": r.id, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
            continue
        state.record_event(
            "subscriber.confirm_sent", r.name, "confirmation mailed", {"request": r.id}
        )
        n += 1
    return n
