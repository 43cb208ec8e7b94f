"""The status page in a real browser (Debian chromium driven by Playwright): the rendered
states and uptime bars, a page that works with JavaScript off, and approving a drafted
update in the war room makes it public. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import uvicorn
from tests.servers import uvicorn_in_thread
from tests.status.test_web import KEY, plan_for

from drkit.state.store import StateStore
from drkit.status.incidents import Incidents
from drkit.web.app import create_app
from drkit.web.auth import KeyCheck

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian chromium (scripts/system-deps.sh)"
)


def test_the_page_renders_states_and_approving_a_draft_publishes_it(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    store = StateStore(tmp_path / "state.db")
    plan = plan_for(tmp_path)
    store.record_event(
        "gateway.ejection", "sim-eu", "sim-eu ejected", {"target": "sim-eu", "reason": "http_5xx"}
    )
    inc = Incidents(store, ["Assistant API"]).open(
        "Slow answers", components=["Assistant API"], draft=True, body="Drafted notice"
    )
    app = create_app(plan, store, keys=KeyCheck(KEY), draft_every=None)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    with uvicorn_in_thread(config, what="the status page") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            nojs = browser.new_context(java_script_enabled=False)
            page = nojs.new_page()
            page.goto(url + "/")
            row = page.locator('[data-component="Assistant API"]')
            assert row.get_attribute("data-state") == "degraded_performance"
            assert "Degraded performance" in row.inner_text()
            assert row.locator(".bars span").count() == 90
            assert page.locator("[data-incident]").count() == 0  # the draft is not public
            page.screenshot(path=str(tmp_path / "public-degraded.png"), full_page=True)

            internal = browser.new_context(http_credentials={"username": "alice", "password": KEY})
            room = internal.new_page()
            room.goto(f"{url}/internal/incidents/{inc.id}")
            room.get_by_role("button", name="Approve and publish").click()
            room.wait_for_load_state()
            assert "public" in room.locator('[data-update="u1"]').inner_text()
            room.screenshot(path=str(tmp_path / "war-room.png"), full_page=True)

            page.goto(url + "/")
            assert page.locator(f'[data-incident="{inc.id}"]').inner_text().count("Drafted notice")
            page.screenshot(path=str(tmp_path / "public-incident.png"), full_page=True)
        finally:
            browser.close()
