"""Issue 16's "done when", end to end in a real browser: the status page beside a real
gateway and two provider simulators; the provider-outage drill keeps the page green
(maintenance while it runs, nothing drafted, no dent in the bars); a real outage of the
primary turns the page ``degraded_performance`` by itself, drafts an incident, a person
approves it in the war room, the escalation list gets the mail (aiosmtpd), the incident is
resolved, and ``drkit postmortem`` writes the measured figures. Screenshots in tmp_path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.servers import uvicorn_in_thread
from tests.status.test_browser import CHROMIUM, FLAGS
from tests.status.test_notify import smtp_server
from tests.status.test_web import KEY

from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.plan.loader import load_plan
from drkit.state.store import StateStore, plan_state_path
from drkit.status.incidents import Incidents
from drkit.status.page import timeline
from drkit.status.postmortem import measure
from drkit.web.app import create_app
from drkit.web.auth import KeyCheck

PLAN = """
version: 1
name: done-when
tiers: {{critical: {{rto: 5m, rpo: 1h}}}}
repositories: {{primary: {{name: primary, url: "file://{root}/repo", region: eu-west}}}}
serving:
  auth: {{disabled: true}}
  gateway: {{health: {{eject_after: 2, probe_every: 0.3s}}}}
  routes:
    - name: assistant
      tier: critical
      deadlines: {{connect: 1s, first_token: 2s, stream_idle: 2s, total: 5s}}
      targets:
        - {{name: sim-eu, provider: openai, region: eu-west, model: sim-large, api_key: k,
           base_url: "{eu}"}}
        - {{name: sim-us, provider: openai, region: us-east, model: sim-large, api_key: k,
           base_url: "{us}"}}
status_page:
  title: Acme AI status
  smtp: {{host: 127.0.0.1, port: {smtp}, sender: status@acme.test}}
  escalation:
    - {{name: BigCorp, email: cto@bigcorp.test, components: [Assistant API]}}
  components:
    - {{name: Assistant API, covers: [assistant], description: "Chat completions"}}
"""


def until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def drkit(plan: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drkit", *args, "--plan", str(plan)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
@pytest.mark.timeout(180)
def test_drill_keeps_the_page_green_and_a_real_outage_runs_the_whole_incident(
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from drkit.gateway.app import create_app as gateway_app
    from drkit.gateway.config import from_plan
    from drkit.gateway.events import StateEventSink

    eu = ProviderSimulator("openai", api_key="k").start()
    us = ProviderSimulator("openai", api_key="k").start()
    try:
        run_the_flow(tmp_path, sync_api, eu, us, gateway_app, from_plan, StateEventSink)
    finally:
        eu.stop()
        us.stop()


def run_the_flow(
    tmp_path: Path,
    sync_api: Any,
    eu: ProviderSimulator,
    us: ProviderSimulator,
    gateway_app: Any,
    from_plan: Any,
    StateEventSink: Any,
) -> None:
    with smtp_server() as box:
        path = tmp_path / "drkit.yaml"
        path.write_text(PLAN.format(root=tmp_path, eu=eu.base_url, us=us.base_url, smtp=box.port))
        plan = load_plan(path)
        store = StateStore(plan_state_path(plan))
        gw = gateway_app(from_plan(plan), events=StateEventSink(store))
        page_app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=0.2)
        gw_config = uvicorn.Config(gw, lifespan="on", log_level="warning", access_log=False)
        page_config = uvicorn.Config(page_app, lifespan="on", log_level="warning", access_log=False)
        with (
            uvicorn_in_thread(gw_config, what="the gateway") as gw_url,
            uvicorn_in_thread(page_config, what="the status page") as url,
            httpx.Client(base_url=gw_url, timeout=10) as client,
            sync_api.sync_playwright() as p,
        ):
            body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}

            def ask() -> str:
                r = client.post("/v1/chat/completions", json=body)
                assert r.status_code == 200, r.text
                return r.headers.get("x-drkit-target", "")

            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                public = browser.new_context(java_script_enabled=False).new_page()
                row = public.locator('[data-component="Assistant API"]')

                def state() -> str:
                    public.goto(url + "/")
                    return row.get_attribute("data-state") or ""

                assert ask() == "sim-eu"
                assert state() == "operational"

                # 1. the provider-outage drill: maintenance while it runs, green after
                argv = ["drill", "run", "provider-outage", "--plan", str(path), "--json"]
                drill = subprocess.Popen(
                    [sys.executable, "-m", "drkit", *argv],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=dict(os.environ),
                )
                try:
                    until("maintenance during the drill", lambda: state() == "under_maintenance")
                    public.screenshot(path=str(tmp_path / "1-drill-maintenance.png"))
                    assert "Under maintenance" in row.inner_text()
                    out, err = drill.communicate(timeout=120)
                finally:
                    if drill.poll() is None:
                        drill.kill()
                        drill.communicate()
                assert drill.returncode == 0, err.decode()[-2000:]
                assert b'"verdict": "pass"' in out
                assert state() == "operational"
                time.sleep(0.6)  # a few drafting rounds: a drill drafts nothing
                assert store.events(kind="incident.") == []
                today = row.locator(".bars span").last  # maintenance, not downtime
                assert today.get_attribute("class") in ("operational", "under_maintenance")
                assert (today.get_attribute("title") or "").endswith(": 100.00% uptime")
                public.screenshot(path=str(tmp_path / "2-after-drill.png"))

                # 2. a real outage of the primary: the page turns by itself
                eu.set_faults({"kind": "error", "status": 503})
                served = [ask() for _ in range(3)]
                assert set(served) == {"sim-us"}  # clients never saw the outage
                until("degraded_performance", lambda: state() == "degraded_performance")
                public.screenshot(path=str(tmp_path / "3-degraded.png"))
                assert "sim-eu" not in public.content()  # no target names on the public page
                book = Incidents(store, ["Assistant API"])
                inc = until("a drafted incident", lambda: list(book.all().values()))[0]
                assert not inc.public
                assert public.locator("[data-incident]").count() == 0  # a draft is not public
                assert box.messages == []  # nobody is told before a person approves

                # 3. a person approves it in the war room; the escalation list is mailed
                internal = browser.new_context(
                    http_credentials={"username": "alice", "password": KEY}
                ).new_page()
                internal.goto(f"{url}/internal/incidents/{inc.id}")
                room = internal.locator(".timeline").inner_text()
                assert "gateway.ejection" in room
                assert "drill.journal" in room  # the provider-outage drill just before
                assert "drill.started" in room
                internal.get_by_role("button", name="Approve and publish").click()
                internal.wait_for_load_state()
                internal.screenshot(path=str(tmp_path / "4-war-room.png"), full_page=True)
                mail = until("the escalation mail", lambda: box.messages)[0]
                assert mail["To"] == "cto@bigcorp.test"
                assert mail["Subject"] == (
                    f"[Acme AI status] Proactive notice: Investigating: {inc.title}"
                )
                assert "Assistant API (degraded performance)" in mail.get_content()
                assert "sim-eu" not in mail.get_content()
                public.goto(url + "/")
                assert public.locator(f'[data-incident="{inc.id}"]').count() == 1
                internal.goto(url + "/internal/briefing")
                brief = internal.locator(f'[data-briefing-incident="{inc.id}"]').inner_text()
                assert "BigCorp" in brief
                assert "sent" in brief

                # 4. the primary recovers (the gateway's probe), the incident is resolved
                eu.clear_faults()
                until("operational again", lambda: state() == "operational")
                done = drkit(path, "incident", "resolve", inc.id, "-m", "The provider recovered")
                assert done.returncode == 0, done.stderr
                until("the resolution mail", lambda: len(box.messages) == 2)
                assert "resolved" in box.messages[1].get_content()
                public.goto(f"{url}/incidents/{inc.id}")
                assert "The provider recovered" in public.content()
                public.screenshot(path=str(tmp_path / "5-resolved.png"), full_page=True)
            finally:
                browser.close()

        # 5. the postmortem, with what drkit measured
        pm = tmp_path / "postmortem.md"
        written = drkit(path, "postmortem", inc.id, "-o", str(pm))
        assert written.returncode == 0, written.stderr
        text = pm.read_text()
        final = Incidents(store, ["Assistant API"]).get(inc.id)
        m = measure(final, timeline(plan, store, final), store, plan)
        assert m.detect_s is not None
        assert 0 <= m.detect_s < 10
        assert m.failovers >= 2
        assert m.targets_ejected == ["sim-eu"]
        assert m.providers == ["sim-eu: openai/eu-west (sim-large)"]
        assert m.notified == {"escalation": 2}
        assert m.unwell_s is not None
        assert m.rto_target_s == 300
        assert f"Time to detect (first signal to incident): {m.detect_s:.1f} s" in text
        assert f"failed over to a secondary target (served degraded): {m.failovers}" in text
        assert re.search(r"measured RTO\): [0-9.]+ s \(target 300 s: met\)", text)
        assert "Providers involved: sim-eu: openai/eu-west (sim-large)" in text
        assert "Customers told: 2 escalation notice(s)" in text
        store.close()
