"""The status page in process (httpx ASGI transport): page, JSON API shape, Atom, the
internal side's auth/CSRF, and a real gateway whose primary fails turning the page
degraded by itself."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
from tests.servers import uvicorn_in_thread

from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.plan.models import Plan
from drkit.state.store import StateStore
from drkit.status.incidents import Incidents
from drkit.web.app import create_app
from drkit.web.auth import KeyCheck

KEY = "internal-key-123"

PLAN = """
version: 1
name: status-test
tiers: {{critical: {{rto: 5m, rpo: 1h}}}}
repositories: {{primary: {{name: primary, url: "file://{root}/repo", region: eu-west}}}}
serving:
  auth: {{disabled: true}}
  gateway: {{health: {{eject_after: 2}}}}
  routes:
    - name: assistant
      tier: critical
      deadlines: {{connect: 1s, first_token: 5s, stream_idle: 5s, total: 10s}}
      targets:
        - {{name: sim-eu, provider: openai, region: eu-west, model: sim-large, api_key: k,
           base_url: "{eu}"}}
        - {{name: sim-us, provider: openai, region: us-east, model: sim-large, api_key: k,
           base_url: "{us}"}}
status_page:
  title: Acme AI status
  components:
    - {{name: Assistant API, covers: [assistant], description: "Chat completions"}}
"""

_COMPONENT = {
    "type": "object",
    "required": ["id", "name", "status", "created_at", "updated_at", "position", "page_id"],
    "properties": {
        "status": {
            "enum": [
                "operational",
                "degraded_performance",
                "partial_outage",
                "major_outage",
                "under_maintenance",
            ]
        },
    },
}
_UPDATE = {
    "type": "object",
    "required": ["id", "status", "body", "incident_id", "created_at", "display_at"],
    "properties": {"status": {"enum": ["investigating", "identified", "monitoring", "resolved"]}},
}
_INCIDENT = {
    "type": "object",
    "required": [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "resolved_at",
        "impact",
        "shortlink",
        "page_id",
        "incident_updates",
        "components",
    ],
    "properties": {
        "impact": {"enum": ["none", "minor", "major", "critical"]},
        "incident_updates": {"type": "array", "items": _UPDATE},
        "components": {"type": "array", "items": _COMPONENT},
    },
}
_PAGE = {"type": "object", "required": ["id", "name", "url", "time_zone", "updated_at"]}
SUMMARY = {
    "type": "object",
    "required": ["page", "components", "incidents", "scheduled_maintenances", "status"],
    "properties": {
        "page": _PAGE,
        "components": {"type": "array", "items": _COMPONENT},
        "incidents": {"type": "array", "items": _INCIDENT},
        "status": {
            "type": "object",
            "required": ["indicator", "description"],
            "properties": {
                "indicator": {"enum": ["none", "minor", "major", "critical", "maintenance"]}
            },
        },
    },
}
INCIDENTS = {
    "type": "object",
    "required": ["page", "incidents"],
    "properties": {"page": _PAGE, "incidents": {"type": "array", "items": _INCIDENT}},
}


def plan_for(
    tmp_path: Path, eu: str = "http://127.0.0.1:9", us: str = "http://127.0.0.1:9"
) -> Plan:
    path = tmp_path / "drkit.yaml"
    path.write_text(PLAN.format(eu=eu, us=us, root=tmp_path))
    return _load(path)


def _load(path: Path) -> Plan:
    from drkit.plan.loader import load_plan

    return load_plan(path)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://status.test")


def basic(key: str, user: str = "alice") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


async def test_page_api_and_feed_follow_the_events(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    store = StateStore(":memory:")
    app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
    async with client(app) as c:
        r = await c.get("/")
        assert r.status_code == 200
        assert 'data-state="operational"' in r.text
        assert "All Systems Operational" in r.text
        assert r.text.count('class="nodata"') <= 90
        store.record_event(
            "gateway.ejection",
            "sim-eu",
            "sim-eu ejected",
            {"target": "sim-eu", "reason": "http_5xx"},
        )
        r = await c.get("/")
        assert 'data-component="Assistant API" data-state="degraded_performance"' in r.text
        book = Incidents(store, ["Assistant API"])
        inc = book.open("Slow <answers>", components=["Assistant API"], severity="sev2")
        summary = (await c.get("/api/v2/summary.json")).json()
        jsonschema.validate(summary, SUMMARY)
        assert summary["status"]["indicator"] == "minor"
        assert summary["components"][0]["status"] == "degraded_performance"
        assert summary["incidents"][0]["impact"] == "minor"
        r = await c.get("/")
        assert "Slow &lt;answers&gt;" in r.text
        assert "<answers>" not in r.text
        book.resolve(inc.id, "Primary is back")
        jsonschema.validate((await c.get("/api/v2/incidents.json")).json(), INCIDENTS)
        feed = ET.fromstring((await c.get("/history.atom")).text)
        ns = "{http://www.w3.org/2005/Atom}"
        assert [e.findtext(f"{ns}title") for e in feed.iter(f"{ns}entry")] == ["Slow <answers>"]
        assert (await c.get(f"/incidents/{inc.id}")).status_code == 200


async def test_degraded_quality_reads_as_degraded_performance_for_statuspage_clients(
    tmp_path: Path,
) -> None:
    store = StateStore(":memory:")
    store.record_event(
        "eval.run", "assistant", "golden-qa regressed", {"route": "assistant", "passed": False}
    )
    app = create_app(plan_for(tmp_path), store, keys=KeyCheck(KEY), draft_every=None)
    async with client(app) as c:
        comp = (await c.get("/api/v2/summary.json")).json()["components"][0]
        assert (comp["status"], comp["drkit_status"]) == (
            "degraded_performance",
            "degraded_quality",
        )
        assert 'data-state="degraded_quality"' in (await c.get("/")).text


async def test_internal_side_needs_the_key_and_csrf_and_drafts_stay_private(
    tmp_path: Path,
) -> None:
    store = StateStore(":memory:")
    plan = plan_for(tmp_path)
    app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
    book = Incidents(store, ["Assistant API"])
    inc = book.open("Drafted by a signal", components=["Assistant API"], draft=True)
    async with client(app) as c:
        assert (await c.get("/internal")).status_code == 401
        assert (await c.get("/internal", headers=basic("wrong"))).status_code == 403
        assert (await c.get("/api/v2/incidents.json")).json()["incidents"] == []
        assert (await c.get(f"/incidents/{inc.id}")).status_code == 404
        room = await c.get(f"/internal/incidents/{inc.id}", headers=basic(KEY))
        assert room.status_code == 200
        assert "Approve and publish" in room.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', room.text)
        assert csrf is not None
        url = f"/internal/incidents/{inc.id}/approve"
        assert (await c.post(url, headers=basic(KEY), data={"update": "u1"})).status_code == 403
        big = {"csrf": csrf.group(1), "update": "u1", "pad": "x" * 20000}
        assert (await c.post(url, headers=basic(KEY), data=big)).status_code == 413
        r = await c.post(url, headers=basic(KEY), data={"csrf": csrf.group(1), "update": "u1"})
        assert r.status_code == 303
        assert [i["id"] for i in (await c.get("/api/v2/incidents.json")).json()["incidents"]] == [
            inc.id
        ]
        r = await c.post(
            "/internal/incidents",
            headers=basic(KEY),
            data={"csrf": csrf.group(1), "title": "x", "component": "Nope"},
        )
        assert r.status_code == 400
        assert "unknown status component" in r.text


@pytest.mark.timeout(60)
async def test_a_real_gateway_with_a_failing_primary_turns_the_page_degraded(
    tmp_path: Path,
) -> None:
    from drkit.gateway.app import create_app as gateway_app
    from drkit.gateway.config import from_plan
    from drkit.gateway.events import StateEventSink
    from drkit.status import postmortem
    from drkit.status.page import draft_incidents, snapshot, timeline

    eu = ProviderSimulator("openai", api_key="k").start()
    us = ProviderSimulator("openai", api_key="k").start()
    try:
        eu.set_faults({"kind": "error", "status": 503})
        plan = plan_for(tmp_path, eu.base_url, us.base_url)
        store = StateStore(tmp_path / "state.db")
        gw = gateway_app(from_plan(plan), events=StateEventSink(store))
        body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
        config = uvicorn.Config(gw, lifespan="on", log_level="warning", access_log=False)
        with uvicorn_in_thread(config, what="the gateway") as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as g:
                for _ in range(3):
                    r = await g.post("/v1/chat/completions", json=body)
                    assert r.status_code == 200, r.text  # served by the secondary
        kinds = {e.kind for e in store.events(kind="gateway.")}
        assert {"gateway.failover", "gateway.ejection"} <= kinds
        page = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
        async with client(page) as c:
            html = (await c.get("/")).text
            assert 'data-component="Assistant API" data-state="degraded_performance"' in html
            assert "sim-eu" not in html  # internal target names stay off the public page
        drafted = draft_incidents(plan, store, snapshot(plan, store))
        assert len(drafted) == 1
        assert not drafted[0].public
        assert "sim-eu" in drafted[0].cause
        assert draft_incidents(plan, store, snapshot(plan, store)) == []  # once per outage
        lines = timeline(plan, store, drafted[0])
        assert {"gateway.ejection", "incident.opened"} <= {t.kind for t in lines}
        book = Incidents(store, ["Assistant API"])
        book.approve(drafted[0].id, by="alice")
        book.resolve(drafted[0].id, "sim-eu answers again")
        text = postmortem.draft(plan, store, book.get(drafted[0].id))
        m = postmortem.measure(book.get(drafted[0].id), timeline(plan, store, drafted[0]), store)
        assert m.failovers >= 2
        assert m.targets_ejected == ["sim-eu"]
        assert m.detect_s is not None
        assert m.detect_s >= 0
        for heading in (
            "## Summary",
            "## Impact",
            "## Root cause",
            "## Detection",
            "## Timeline (UTC)",
            "## Action items",
        ):
            assert heading in text
        assert f"Time to detect (first signal to incident): {m.detect_s:.1f} s" in text
    finally:
        eu.stop()
        us.stop()
