"""Telling people: subscribers and the escalation list, by signed webhook and by email.

Who hears what (the plan's ``status_page``):

- ``subscribers`` get every *public* update of an incident touching a component they follow:
  ``published`` (the first public update, i.e. when a person approved the draft),
  ``updated``, ``resolved``;
- ``escalation`` contacts (enterprise customers) are briefed proactively when an incident
  touching their components is approved (``published``) and when it is ``resolved``.

Delivery is event-sourced, so it survives restarts and is never sent twice: a notice (one
contact, one channel, one incident update) is due until a ``notify.sent`` event names its
key; a failure records ``notify.failed`` with the attempt and the next try (exponential
backoff from :data:`BACKOFF_S`); after :data:`MAX_ATTEMPTS` a ``notify.gave_up``. The status
page runs :func:`deliver` in its background task, never in a request.

Webhooks are POSTed JSON (Statuspage's webhook shape: ``meta``, ``page``, ``incident``) with
``X-Drkit-Timestamp`` and ``X-Drkit-Signature: sha256=HEX``, the HMAC-SHA256 of
``TIMESTAMP.BODY`` under the contact's secret (:func:`sign`; receivers check it with
:func:`verify` and refuse old timestamps). Mails carry a signed unsubscribe link (and RFC
8058 ``List-Unsubscribe``) when the page has a link key; unsubscribing records
``subscriber.unsubscribed`` after the person confirms it on a form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx
from jinja2 import Environment, FileSystemLoader

from drkit.status import api
from drkit.status.incidents import Incident, Update
from drkit.types import SIGNATURE_TOLERANCE_S as SIGNATURE_TOLERANCE_S
from drkit.types import sign as sign
from drkit.types import verify as verify

if TYPE_CHECKING:
    from drkit.plan.models import Plan, StatusContact, StatusSmtp
    from drkit.state.store import StateStore
    from drkit.status.page import Snapshot

MAX_ATTEMPTS = 5
#: the first retry waits this long; each further one twice as long
BACKOFF_S = 5.0
#: updates older than this when a contact first could hear of them are not sent (a
#: contact added to the plan today is not mailed last month's incidents)
WINDOW_S = 24 * 3600.0
TIMEOUT_S = 10.0

Group = Literal["subscriber", "escalation"]
Channel = Literal["email", "webhook"]
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class Notice:
    """One message due: a contact, a channel, an incident's update."""

    group: Group
    contact: StatusContact
    channel: Channel
    incident: Incident
    update: Update
    event: Literal["published", "updated", "resolved"]

    @property
    def key(self) -> str:
        return ":".join(
            (self.group, self.contact.name, self.channel, self.incident.id, self.update.id)
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    notice: Notice
    ok: bool
    attempt: int
    error: str = ""


def unsubscribe_token(link_key: bytes, contact: str) -> str:
    return hmac.new(link_key, b"unsubscribe\0" + contact.encode(), hashlib.sha256).hexdigest()


def unsubscribed(state: StateStore) -> set[str]:
    return {e.component for e in state.events(kind="subscriber.unsubscribed")}


def _follows(contact: StatusContact, inc: Incident) -> bool:
    return not contact.components or bool(set(contact.components) & set(inc.components))


def due(plan: Plan, state: StateStore, snap: Snapshot, *, now: float) -> list[Notice]:
    """The notices to send now: not sent, not given up, past their backoff."""
    sent: set[str] = set()
    gave_up: set[str] = set()
    failed: dict[str, float] = {}  # key -> next try
    for e in state.events(kind="notify."):
        key = str(e.data.get("key", ""))
        if e.kind == "notify.sent":
            sent.add(key)
        elif e.kind == "notify.gave_up":
            gave_up.add(key)
        elif e.kind == "notify.failed":
            failed[key] = float(e.data.get("next_at", 0.0))
    from drkit.status.subscriptions import active

    gone = unsubscribed(state)
    # the plan's subscribers (unless unsubscribed), then the confirmed self-service ones
    subscribers = [c for c in plan.status_page.subscribers if c.name not in gone]
    subscribers += active(state)
    out: list[Notice] = []
    for inc in snap.public_incidents:
        ups = inc.public_updates
        for i, up in enumerate(ups):
            if (up.approved_at or up.at) < now - WINDOW_S:
                continue
            event: Literal["published", "updated", "resolved"] = (
                "resolved" if up.status == "resolved" else "published" if i == 0 else "updated"
            )
            groups: list[tuple[Group, Sequence[StatusContact]]] = [("subscriber", subscribers)]
            if event in ("published", "resolved"):
                groups.append(("escalation", plan.status_page.escalation))
            for group, contacts in groups:
                for c in contacts:
                    if not _follows(c, inc):
                        continue
                    channels: list[Channel] = []
                    if c.email:
                        channels.append("email")
                    if c.webhook:
                        channels.append("webhook")
                    for ch in channels:
                        n = Notice(group, c, ch, inc, up, event)
                        if n.key in sent or n.key in gave_up or failed.get(n.key, 0.0) > now:
                            continue
                        out.append(n)
    return out


class Sender:
    """Sends one notice by its channel; raises on failure (the caller records it)."""

    def __init__(
        self, plan: Plan, snap: Snapshot, *, link_key: bytes | None, base_url: str = ""
    ) -> None:
        self.plan = plan
        self.snap = snap
        self.link_key = link_key
        self.url = (plan.status_page.url or base_url).rstrip("/")
        self.env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=False,  # plain-text mail
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def __call__(self, n: Notice) -> None:
        if n.channel == "email":
            self.mail(n)
        else:
            self.post(n)

    def payload(self, n: Notice) -> dict[str, Any]:
        return {
            "meta": {
                "event": f"incident.{n.event}",
                "group": n.group,
                "update_id": n.update.id,
                "generated_at": api.iso(time.time()),
            },
            "page": {
                **api.page(self.snap, self.url),
                "status_indicator": api.status(self.snap)["indicator"],
                "status_description": api.status(self.snap)["description"],
            },
            "incident": api.incident(self.snap, n.incident, self.url),
        }

    def post(self, n: Notice) -> None:
        assert n.contact.webhook is not None
        assert n.contact.secret is not None
        body = json.dumps(self.payload(n), separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "drkit-status",
            "x-drkit-event": f"incident.{n.event}",
            "x-drkit-timestamp": str(ts),
            "x-drkit-signature": sign(n.contact.secret.reveal(), body, ts),
            "x-drkit-delivery": n.key,
        }
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            r = client.post(n.contact.webhook, content=body, headers=headers)
        if r.status_code >= 300:
            raise OSError(f"webhook answered HTTP {r.status_code}")

    def message(self, n: Notice) -> EmailMessage:
        sp = self.plan.status_page
        assert n.contact.email is not None
        inc = n.incident
        unsubscribe = ""
        if n.group == "subscriber" and self.link_key and self.url:
            token = unsubscribe_token(self.link_key, n.contact.name)
            unsubscribe = f"{self.url}/unsubscribe?s={quote(n.contact.name)}&t={token}"
        template = "escalation.txt" if n.group == "escalation" else "notice.txt"
        text = self.env.get_template(template).render(
            n=n,
            inc=inc,
            title=sp.title,
            url=self.url,
            states=self.snap.states,
            unsubscribe=unsubscribe,
            when=_fmt(n.update.approved_at or n.update.at),
        )
        msg = EmailMessage()
        prefix = "Resolved" if n.event == "resolved" else n.update.status.capitalize()
        if n.group == "escalation":
            prefix = f"Proactive notice: {prefix}"
        msg["Subject"] = f"[{sp.title}] {prefix}: {inc.title}"
        msg["From"] = sp.smtp.sender
        msg["To"] = n.contact.email
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="drkit.status")
        msg["X-Drkit-Incident"] = inc.id
        msg["X-Drkit-Delivery"] = n.key
        if unsubscribe:
            msg["List-Unsubscribe"] = f"<{unsubscribe}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text)
        return msg

    def mail(self, n: Notice) -> None:
        send_mail(self.plan.status_page.smtp, self.message(n))


def send_mail(smtp: StatusSmtp, msg: EmailMessage) -> None:
    """One SMTP session per message, always closed (the ``with`` quits and closes)."""
    with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S) as s:
        if smtp.starttls:
            s.starttls(context=ssl.create_default_context())
        if smtp.username and smtp.password:
            s.login(smtp.username, smtp.password.reveal())
        s.send_message(msg)


def _fmt(epoch: float) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(epoch, UTC):%Y-%m-%d %H:%M} UTC"


def deliver(
    plan: Plan,
    state: StateStore,
    snap: Snapshot,
    *,
    now: float | None = None,
    link_key: bytes | None = None,
    base_url: str = "",
    send: Callable[[Notice], None] | None = None,
) -> list[Outcome]:
    """Send every due notice once; record each outcome. Never raises for a delivery."""
    now = time.time() if now is None else now
    notices = due(plan, state, snap, now=now)
    if not notices:
        return []
    send = send or Sender(plan, snap, link_key=link_key, base_url=base_url)
    attempts: dict[str, int] = {}
    for e in state.events(kind="notify.failed"):
        key = str(e.data.get("key", ""))
        attempts[key] = max(attempts.get(key, 0), int(e.data.get("attempt", 0)))
    out = []
    for n in notices:
        attempt = attempts.get(n.key, 0) + 1
        data: dict[str, Any] = {
            "key": n.key,
            "group": n.group,
            "contact": n.contact.name,
            "channel": n.channel,
            "incident": n.incident.id,
            "update": n.update.id,
            "event": n.event,
            "attempt": attempt,
        }
        try:
            send(n)
        except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            if attempt >= MAX_ATTEMPTS:
                state.record_event(
                    "notify.gave_up",
                    n.contact.name,
                    f"gave up notifying {n.contact.name} by {n.channel} after {attempt} attempts",
                    {**data, "error": error},
                )
            else:
                next_at = now + BACKOFF_S * 2 ** (attempt - 1)
                state.record_event(
                    "notify.failed",
                    n.contact.name,
                    f"notifying {n.contact.name} by {n.channel} failed: {error}",
                    {**data, "error": error, "next_at": next_at},
                )
            out.append(Outcome(n, False, attempt, error))
            continue
        state.record_event(
            "notify.sent",
            n.contact.name,
            f"{n.event} {n.incident.id} sent to {n.contact.name} by {n.channel}",
            data,
        )
        out.append(Outcome(n, True, attempt))
    return out


def deliveries(state: StateStore, incident_id: str) -> list[dict[str, Any]]:
    """The delivery log of one incident (for the briefing page)."""
    return [
        {"at": e.at, "kind": e.kind, **e.data}
        for e in state.events(kind="notify.")
        if e.data.get("incident") == incident_id
    ]
