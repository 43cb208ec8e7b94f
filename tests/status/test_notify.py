"""Subscribers and the escalation list against real servers on 127.0.0.1: an aiosmtpd SMTP
server receives the mails, a uvicorn receiver checks the webhooks' HMAC signatures.
Delivery retries with backoff, is recorded, never repeats; unsubscribing takes a confirm."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from tests.servers import free_port, uvicorn_in_thread
from tests.status.test_web import KEY, PLAN, basic, client

from drkit.errors import PlanError
from drkit.plan.loader import load_plan
from drkit.plan.models import Plan
from drkit.state.store import StateStore
from drkit.status import notify
from drkit.status.incidents import Incidents
from drkit.status.page import snapshot
from drkit.web.app import create_app
from drkit.web.auth import KeyCheck

SECRET = "hook-secret-1"


@dataclass
class Mailbox:
    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())
    ctl = Controller(box, hostname="127.0.0.1", port=box.port)
    ctl.start()
    try:
        yield box
    finally:
        ctl.stop()


@dataclass
class Receiver:
    url: str = ""
    got: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    fail_next: int = 0


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        if rec.fail_next:
            rec.fail_next -= 1
            return PlainTextResponse("busy", status_code=503)
        ok = notify.verify(
            SECRET,
            body,
            request.headers.get("x-drkit-timestamp", ""),
            request.headers.get("x-drkit-signature", ""),
        )
        if not ok:
            rec.refused += 1
            return PlainTextResponse("bad signature", status_code=401)
        rec.got.append(json.loads(body))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    with uvicorn_in_thread(config, what="the webhook receiver") as url:
        rec.url = url + "/hook"
        yield rec


CONTACTS = """
  url: "https://status.example.com"
  smtp: {{host: 127.0.0.1, port: {smtp}, sender: status@acme.test}}
  subscribers:
    - {{name: ops-list, email: ops@customer.test}}
    - {{name: partner-hook, webhook: "{hook}", secret: {secret}, components: [Assistant API]}}
  escalation:
    - {{name: BigCorp, email: cto@bigcorp.test, components: [Assistant API]}}
"""


def plan_with_contacts(tmp_path: Path, smtp: int, hook: str, secret: str = SECRET) -> Plan:
    text = PLAN.format(eu="http://127.0.0.1:9", us="http://127.0.0.1:9", root=tmp_path)
    text = text.replace(
        "status_page:\n  title: Acme AI status\n",
        "status_page:\n  title: Acme AI status\n"
        + CONTACTS.format(smtp=smtp, hook=hook, secret=secret).lstrip("\n"),
    )
    path = tmp_path / "drkit.yaml"
    path.write_text(text)
    return load_plan(path)


def test_publish_update_resolve_reach_subscribers_and_the_escalation_list(
    tmp_path: Path,
) -> None:
    with smtp_server() as box, webhook_receiver() as rec:
        plan = plan_with_contacts(tmp_path, box.port, rec.url)
        store = StateStore(tmp_path / "state.db")
        book = Incidents(store, ["Assistant API"])
        link_key = KeyCheck(KEY).link_key
        inc = book.open("Slow answers", components=["Assistant API"], draft=True, body="Looking")

        def run(now: float | None = None) -> list[notify.Outcome]:
            return notify.deliver(plan, store, snapshot(plan, store), now=now, link_key=link_key)

        assert run() == []  # a draft tells nobody
        assert box.messages == []
        book.approve(inc.id, by="alice")
        sent = run()
        assert sorted((o.notice.group, o.notice.channel, o.ok) for o in sent) == [
            ("escalation", "email", True),
            ("subscriber", "email", True),
            ("subscriber", "webhook", True),
        ]
        assert run() == []  # recorded: never sent twice
        escalation = next(m for m in box.messages if m["To"] == "cto@bigcorp.test")
        assert escalation["Subject"].startswith("[Acme AI status] Proactive notice: Investigating")
        text = escalation.get_content()
        assert "Dear BigCorp" in text
        assert "Looking" in text
        assert "https://status.example.com/incidents/inc-1" in text
        assert "List-Unsubscribe" not in escalation  # the escalation list is the plan's
        ops = next(m for m in box.messages if m["To"] == "ops@customer.test")
        assert ops["List-Unsubscribe"].startswith("<https://status.example.com/unsubscribe?")
        assert rec.got[0]["meta"]["event"] == "incident.published"
        assert rec.got[0]["incident"]["id"] == inc.id
        assert rec.got[0]["incident"]["incident_updates"][0]["body"] == "Looking"

        book.update(inc.id, "identified", "A provider is failing; we moved traffic")
        run()
        assert len(box.messages) == 3  # escalation contacts hear of approval and resolution only
        assert rec.got[-1]["meta"]["event"] == "incident.updated"
        book.resolve(inc.id, "Fixed")
        run()
        assert [m["To"] for m in box.messages[3:]].count("cto@bigcorp.test") == 1
        assert "resolved" in box.messages[-1].get_content().lower()
        assert rec.got[-1]["meta"]["event"] == "incident.resolved"
        assert rec.refused == 0
        kinds = [e.kind for e in store.events(kind="notify.")]
        assert kinds.count("notify.sent") == 8


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(tmp_path: Path) -> None:
    with webhook_receiver() as rec:
        plan = plan_with_contacts(tmp_path, free_port(), rec.url)  # no SMTP server listens
        plan.status_page.escalation = []
        store = StateStore(tmp_path / "state.db")
        book = Incidents(store, ["Assistant API"])
        book.open("Outage", components=["Assistant API"])
        rec.fail_next = 1
        t0 = time.time()

        def run(now: float) -> list[notify.Outcome]:
            return notify.deliver(plan, store, snapshot(plan, store, now=now), now=now)

        first = run(t0)
        assert {(o.notice.channel, o.ok) for o in first} == {("email", False), ("webhook", False)}
        assert run(t0 + 1) == []  # backing off
        second = run(t0 + notify.BACKOFF_S + 0.1)
        assert {(o.notice.channel, o.ok) for o in second} == {("email", False), ("webhook", True)}
        assert len(rec.got) == 1
        later = t0 + notify.BACKOFF_S
        for attempt in range(3, notify.MAX_ATTEMPTS + 1):
            later += notify.BACKOFF_S * 2 ** (attempt - 2) + 0.1
            assert [o.attempt for o in run(later)] == [attempt]
        assert run(later + 10_000) == []
        gave_up = store.events(kind="notify.gave_up")
        assert len(gave_up) == 1
        assert gave_up[0].data["channel"] == "email"
        assert "Connection" in gave_up[0].data["error"] or "refused" in gave_up[0].data["error"]


def test_a_forged_signature_is_refused_by_the_receiver(tmp_path: Path) -> None:
    with webhook_receiver() as rec:
        plan = plan_with_contacts(tmp_path, free_port(), rec.url, secret="not-the-secret")
        plan.status_page.subscribers = [c for c in plan.status_page.subscribers if c.webhook]
        plan.status_page.escalation = []
        store = StateStore(tmp_path / "state.db")
        Incidents(store, ["Assistant API"]).open("Outage", components=["Assistant API"])
        out = notify.deliver(plan, store, snapshot(plan, store))
        assert [o.ok for o in out] == [False]
        assert rec.refused == 1
        assert rec.got == []
    body = b'{"x":1}'
    assert notify.verify(SECRET, body, "1000", notify.sign(SECRET, body, 1000), now=1000)
    assert not notify.verify(SECRET, body, "1000", notify.sign(SECRET, body, 1000), now=2000)
    assert not notify.verify(SECRET, body + b" ", "1000", notify.sign(SECRET, body, 1000), now=1000)


async def test_unsubscribe_needs_the_signed_link_and_a_confirm(tmp_path: Path) -> None:
    plan = plan_with_contacts(tmp_path, free_port(), "http://127.0.0.1:9/hook")
    store = StateStore(tmp_path / "state.db")
    keys = KeyCheck(KEY)
    assert keys.link_key is not None
    token = notify.unsubscribe_token(keys.link_key, "ops-list")
    app = create_app(plan, store, keys=keys, draft_every=None)
    async with client(app) as c:
        assert (await c.get("/unsubscribe?s=ops-list&t=" + "0" * 64)).status_code == 403
        assert (await c.get(f"/unsubscribe?s=BigCorp&t={token}")).status_code == 403
        page = await c.get(f"/unsubscribe?s=ops-list&t={token}")
        assert page.status_code == 200
        assert "<form" in page.text
        assert notify.unsubscribed(store) == set()  # a GET (a mail scanner) changes nothing
        done = await c.post(f"/unsubscribe?s=ops-list&t={token}")
        assert 'data-unsubscribed="ops-list"' in done.text
        assert notify.unsubscribed(store) == {"ops-list"}
        Incidents(store, ["Assistant API"]).open("Outage", components=["Assistant API"])
        due = notify.due(plan, store, snapshot(plan, store), now=snapshot(plan, store).now)
        assert "ops-list" not in {n.contact.name for n in due}
        assert "BigCorp" in {n.contact.name for n in due}
        brief = await c.get("/internal/briefing", headers=basic(KEY))
        assert brief.status_code == 200
        assert re.search(r"Enterprise customers affected</b> BigCorp", brief.text)
        assert (await c.get("/internal/briefing")).status_code == 401


def test_contacts_are_checked_when_the_plan_loads(tmp_path: Path) -> None:
    base = PLAN.format(eu="http://127.0.0.1:9", us="http://127.0.0.1:9", root=tmp_path)
    bad = {
        "components: [Nope]": "  subscribers:\n    - {name: a, email: a@b.c, components: [Nope]}\n",
        "webhook needs a secret": "  subscribers:\n    - {name: a, webhook: 'http://x.test/h'}\n",
        "webhook or an email": "  escalation:\n    - {name: a}\n",
    }
    for what, extra in bad.items():
        path = tmp_path / "drkit.yaml"
        path.write_text(
            base.replace("  title: Acme AI status\n", "  title: Acme AI status\n" + extra)
        )
        with pytest.raises(PlanError) as err:
            load_plan(path)
        assert "status_page" in str(err.value), what
        assert what.split(":")[0] in str(err.value) or "Nope" in str(err.value), err.value


async def test_the_war_room_discards_a_draft(tmp_path: Path) -> None:
    plan = plan_with_contacts(tmp_path, free_port(), "http://127.0.0.1:9/hook")
    store = StateStore(tmp_path / "state.db")
    inc = Incidents(store, ["Assistant API"]).open(
        "Maybe", components=["Assistant API"], draft=True
    )
    app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
    async with client(app) as c:
        room = await c.get(f"/internal/incidents/{inc.id}", headers=basic(KEY))
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', room.text)
        assert csrf is not None
        assert "Discard draft" in room.text
        url = f"/internal/incidents/{inc.id}/discard"
        forged = await c.post(url, headers=basic(KEY), data={"csrf": "0", "reason": "x"})
        assert forged.status_code == 403
        r = await c.post(url, headers=basic(KEY), data={"csrf": csrf.group(1), "reason": "noise"})
        assert r.status_code == 303
        room = await c.get(f"/internal/incidents/{inc.id}", headers=basic(KEY))
        assert "Discarded: noise" in room.text
        assert "Discard draft" not in room.text
    assert notify.due(plan, store, snapshot(plan, store), now=time.time()) == []


async def test_self_service_subscription_is_confirmed_by_the_subscriber(tmp_path: Path) -> None:
    from drkit.status import subscriptions

    with smtp_server() as box:
        plan = plan_with_contacts(tmp_path, box.port, "http://127.0.0.1:9/hook")
        plan.status_page.url = "http://status.test"
        plan.status_page.subscribers, plan.status_page.escalation = [], []
        store = StateStore(tmp_path / "state.db")
        keys = KeyCheck(KEY)
        app = create_app(plan, store, keys=keys, draft_every=None)
        async with client(app) as c:
            assert "data-subscribe-form" in (await c.get("/")).text
            for bad, why in (
                ({"email": "not-an-address"}, "not an email address"),
                ({"email": "a@b.test", "component": "Nope"}, "unknown status component"),
            ):
                r = await c.post("/subscribe", data=bad)
                assert r.status_code == 400
                assert why in r.text
            evil = await c.post(
                "/subscribe", data={"email": "a@b.test"}, headers={"origin": "http://evil.test"}
            )
            assert evil.status_code == 403
            form = {"email": "new@reader.test", "component": "Assistant API"}
            assert "data-sent" in (await c.post("/subscribe", data=form)).text
            await c.post("/subscribe", data=form)  # again within the hour: no second mail
            assert subscriptions.send_confirmations(plan, store, keys.link_key) == 1
            [mail] = box.messages
            assert mail["To"] == "new@reader.test"
            link = re.search(r"http://status\.test(/subscribe/confirm\?\S+)", mail.get_content())
            assert link is not None
            forged = re.sub(r"t=[0-9a-f]+", "t=" + "0" * 64, link.group(1))
            assert (await c.get(forged)).status_code == 403
            assert "Confirm subscription" in (await c.get(link.group(1))).text
            assert subscriptions.active(store) == []  # a GET confirms nothing
            assert "data-confirmed" in (await c.post(link.group(1))).text
            [who] = subscriptions.active(store)
            assert (who.email, who.components) == ("new@reader.test", ["Assistant API"])

            book = Incidents(store, ["Assistant API"])
            book.open("Outage", components=["Assistant API"], body="Investigating")
            sent = notify.deliver(plan, store, snapshot(plan, store), link_key=keys.link_key)
            assert [(o.notice.contact.name, o.ok) for o in sent] == [(who.name, True)]
            notice = box.messages[-1]
            assert notice["To"] == "new@reader.test"
            unsub = notice["List-Unsubscribe"].strip("<>").removeprefix("http://status.test")
            await c.post(unsub)
            assert subscriptions.active(store) == []
            book.update("inc-1", "identified", "Found it")
            assert notify.deliver(plan, store, snapshot(plan, store)) == []


async def test_the_war_room_assigns_roles(tmp_path: Path) -> None:
    plan = plan_with_contacts(tmp_path, free_port(), "http://127.0.0.1:9/hook")
    store = StateStore(tmp_path / "state.db")
    inc = Incidents(store, ["Assistant API"]).open("Outage", components=["Assistant API"])
    app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
    async with client(app) as c:
        room = await c.get(f"/internal/incidents/{inc.id}", headers=basic(KEY))
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', room.text)
        assert csrf is not None
        url = f"/internal/incidents/{inc.id}/roles"
        form = {"csrf": csrf.group(1), "role": "communications", "person": "Dana <b>"}
        assert (await c.post(url, headers=basic(KEY), data=form)).status_code == 303
        bad = await c.post(url, headers=basic(KEY), data={**form, "role": "chef"})
        assert bad.status_code == 400
        room = await c.get(f"/internal/incidents/{inc.id}", headers=basic(KEY))
        assert "communications: Dana &lt;b&gt;" in room.text
    assert Incidents(store, []).get(inc.id).roles == {"communications": "Dana <b>"}
