"""`drkit postmortem INCIDENT [--format md|html]` and its action items, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.status.test_web import plan_for

from drkit.cli.main import main


def test_action_items_are_tracked_to_closure_and_drafted_into_the_postmortem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRKIT_STATE", raising=False)
    plan_for(tmp_path)
    plan = str(tmp_path / "drkit.yaml")

    def cli(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--plan", plan])
        out = capsys.readouterr()
        return code, out.out, out.err

    assert cli("incident", "open", "Slow <answers>", "-c", "Assistant API")[0] == 0
    add = ["postmortem", "action", "add", "inc-1"]
    code, out, _ = cli(*add, "Alert on 503s", "--type", "prevent", "--owner", "al", "--due",
                       "2020-01-01", "--json")  # fmt: skip
    assert code == 0
    [item] = json.loads(out)["actions"]
    assert (item["id"], item["status"], item["overdue"]) == ("a1", "open", True)
    cli(*add, "Runbook for failover", "--type", "process", "--owner", "bo", "--due", "2999-01-01")
    assert cli("postmortem", "action", "close", "inc-1", "a1", "-m", "shipped")[0] == 0
    code, out, _ = cli("postmortem", "action", "list", "--open", "--json")
    assert [a["id"] for a in json.loads(out)["actions"]] == ["a2"]

    code, md, _ = cli("postmortem", "inc-1")
    assert code == 0
    assert "| a1: Alert on 503s | prevent | al | 2020-01-01 | closed: shipped |" in md
    assert "| a2: Runbook for failover | process | bo | 2999-01-01 | open |" in md
    page = tmp_path / "pm.html"
    assert cli("postmortem", "inc-1", "--format", "html", "-o", str(page))[0] == 0
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    assert "Slow &lt;answers&gt;" in html  # escaped
    assert 'data-action="a2"' in html

    for bad, why in (
        (("postmortem", "inc-9"), "no incident 'inc-9'"),
        (("postmortem", "inc-1", "--format", "pdf"), "format 'pdf'"),
        ((*add, "x", "--type", "nope", "--owner", "a", "--due", "2026-01-01"), "type 'nope'"),
        ((*add, "x", "--type", "prevent", "--owner", "a", "--due", "soon"), "due date 'soon'"),
        (("postmortem", "action", "close", "inc-1", "a9"), "no action 'a9'"),
    ):
        code, _, err = cli(*bad)
        assert code == 2, bad
        assert why in err


async def test_a_reviewed_postmortem_is_published_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.status.test_web import KEY, client

    from drkit.state.store import StateStore, plan_state_path
    from drkit.web.app import create_app
    from drkit.web.auth import KeyCheck

    monkeypatch.delenv("DRKIT_STATE", raising=False)
    loaded = plan_for(tmp_path)
    plan = str(tmp_path / "drkit.yaml")
    reviewed = tmp_path / "reviewed.md"
    reviewed.write_text(
        "# What happened\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\n<script>x</script>\n"
    )
    assert main(["incident", "open", "Outage", "-c", "Assistant API", "--plan", plan]) == 0
    assert main(["postmortem", "publish", "inc-1", str(reviewed), "--plan", plan]) == 2
    assert "not resolved" in capsys.readouterr().err
    assert main(["incident", "resolve", "inc-1", "--plan", plan]) == 0
    assert main(["postmortem", "publish", "inc-1", str(tmp_path / "nope.md"), "--plan", plan]) == 2
    assert main(["postmortem", "publish", "inc-1", str(reviewed), "--plan", plan]) == 0
    capsys.readouterr()
    app = create_app(
        loaded, StateStore(plan_state_path(loaded)), keys=KeyCheck(KEY), draft_every=None
    )
    async with client(app) as c:
        assert "data-postmortem" in (await c.get("/incidents/inc-1")).text
        page = await c.get("/incidents/inc-1/postmortem")
        assert page.status_code == 200
        assert "<h1>What happened</h1>" in page.text
        assert "<td>1</td>" in page.text
        assert "<script>x" not in page.text  # raw HTML in the Markdown is escaped
        assert "&lt;script&gt;" in page.text
        assert (await c.get("/incidents/inc-9/postmortem")).status_code == 404
