"""The game-day report in a real browser (Debian chromium): per scenario the measured vs
target RTO and RPO charts, the trend over two real game days, the legend fully visible,
the steps on demand without JavaScript. Screenshot in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.drills.conftest import serving_plan
from tests.status.test_browser import CHROMIUM, FLAGS

from drkit.cli.main import main

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")


@pytest.mark.timeout(120)
def test_the_report_reads_in_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.delenv("DRKIT_STATE", raising=False)
    import yaml

    plan = tmp_path / "drkit.yaml"
    plan.write_text(yaml.safe_dump(serving_plan(), sort_keys=False))
    report = tmp_path / "day.html"
    args = ["gameday", "--plan", str(plan), "--scenario", "provider-outage", "--json"]
    assert main([*args, "--report", str(tmp_path / "first.html")]) == 0
    capsys.readouterr()
    assert main([*args, "--report", str(report)]) == 0
    day = json.loads(capsys.readouterr().out)
    [row] = day["scorecard"]
    html = report.read_text()
    assert "<script" not in html

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_context(
                java_script_enabled=False, viewport={"width": 1000, "height": 900}
            ).new_page()
            page.goto(report.as_uri())
            assert page.locator("[data-verdict]").inner_text().startswith("1 of 1 drills")
            card = page.locator('[data-scenario="provider-outage"]')
            rto = card.locator('[data-measure="rto"]')
            assert rto.get_attribute("data-met") == ("met" if row["rto"]["met"] else "missed")
            assert card.locator('[data-measure="rpo"]').count() == 1
            target = row["rto"]["target_s"]
            assert f"of {int(target // 60)}m" in (rto.text_content() or "")
            assert card.locator("[data-trend]").get_attribute("data-trend") == "2"
            assert card.locator(".trend circle").count() == 4  # RTO and RPO of two runs
            legend = page.locator("[data-legend]")
            box = legend.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= 1000  # nothing cut off
            for label in ("steady state", "fault injected", "recovery", "detected", "recovered"):
                assert label in legend.inner_text()
            steps = card.locator("[data-steps] table")
            assert not steps.is_visible()  # on demand
            card.locator("[data-steps] summary").click()
            assert steps.is_visible()
            n = len(json.loads(Path(day["journals"][0]).read_text())["steps"])
            assert steps.locator("tr").count() == n + 1
            page.screenshot(path=str(tmp_path / "gameday-report.png"), full_page=True)
        finally:
            browser.close()
