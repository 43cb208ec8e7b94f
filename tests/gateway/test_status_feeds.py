"""Providers' status feeds: a provider that announces an outage stops getting traffic
before its first failure, and gets it back when the feed clears.

A real HTTP server on 127.0.0.1 serves a Statuspage-shaped feed that the test changes; a
real gateway (uvicorn) polls it; the official openai SDK sends the requests to real
simulators. The parsers are tested on Statuspage, Atom and RSS documents apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from gwkit import CLIENT_KEY, RunningGateway, Sims, chat_attempts, route_for
from tests.servers import http_server_in_thread

from drkit.gateway.config import from_plan
from drkit.gateway.status_feeds import (
    FeedError,
    StatusFeedConfig,
    parse_feed,
    parse_statuspage,
    shown_url,
)
from drkit.plan.loader import load_plan


def statuspage(indicator: str, **components: str) -> dict[str, Any]:
    """A Statuspage ``/api/v2/summary.json`` document."""
    words = {"none": "All Systems Operational", "major": "Partial System Outage"}
    return {
        "page": {"id": "x", "name": "Sim AI", "url": "http://127.0.0.1"},
        "status": {"indicator": indicator, "description": words.get(indicator, indicator)},
        "components": [{"id": n, "name": n, "status": s} for n, s in components.items()],
        "incidents": [],
    }


class FeedServer:
    """Serves ``self.body`` at every path (``status`` replaces the HTTP status)."""

    def __init__(self) -> None:
        self.body = json.dumps(statuspage("none")).encode()
        self.ctype = "application/json"
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(outer.status)
                self.send_header("content-type", outer.ctype)
                self.send_header("content-length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/summary.json"

    def say(self, doc: dict[str, Any]) -> None:
        self.body, self.ctype, self.status = json.dumps(doc).encode(), "application/json", 200


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    srv = FeedServer()
    with http_server_in_thread(srv.server):
        yield srv


def _eventually(what: str, ok: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def _served_by(gw: RunningGateway) -> str:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="assistant", messages=[{"role": "user", "content": "hello"}]
        )
        assert raw.parse().choices[0].message.content
        return str(raw.headers["x-drkit-target"])
    finally:
        client.close()


def _feed_state(gw: RunningGateway) -> dict[str, Any]:
    [state] = gw.admin()["status_feeds"]
    return dict(state)


def test_an_announced_outage_moves_traffic_before_any_failure(
    sims: Sims, gateway_for: Any, feed: FeedServer
) -> None:
    route = route_for(sims.oa1, sims.an2)
    gw = gateway_for(
        route,
        status_feeds=(StatusFeedConfig("sim-a", feed.url, ("openai-1",), poll_every=0.1),),
    )
    _eventually("the feed was read", lambda: _feed_state(gw)["level"] == "none")
    assert _served_by(gw) == "openai-1"
    primary_before = chat_attempts(sims.oa1)

    feed.say(statuspage("major"))
    _eventually("the primary is demoted", lambda: _feed_state(gw)["demoted"])
    for _ in range(3):
        assert _served_by(gw) == "anthropic-2"
    assert chat_attempts(sims.oa1) == primary_before  # not one request, no failure seen
    [target] = [t for t in gw.admin()["targets"] if t["name"] == "openai-1"]
    assert target["state"] == "healthy"
    assert "Partial System Outage" in target["demoted"]
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'drkit_gateway_target_demoted{target="openai-1"} 1.0' in metrics
    assert 'drkit_gateway_target_demoted{target="anthropic-2"} 0.0' in metrics
    [outage] = [e for e in gw.events.events if e.kind == "status_feed_outage"]
    assert outage.component == "sim-a"
    assert outage.data["targets"] == ["openai-1"]
    assert outage.data["level"] == "major"

    # nothing else left: the demoted primary still answers (a panic beats a 503)
    sims.an2.set_faults({"kind": "error", "status": 503})
    assert _served_by(gw) == "openai-1"
    sims.an2.clear_faults()

    feed.say(statuspage("none"))
    _eventually("the primary is back in order", lambda: not _feed_state(gw)["demoted"])
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'drkit_gateway_target_demoted{target="openai-1"} 0.0' in metrics
    assert _served_by(gw) == "openai-1"
    assert "status_feed_clear" in gw.events.kinds()


def test_an_unreachable_or_broken_feed_warns_and_changes_nothing(
    sims: Sims, gateway_for: Any, feed: FeedServer
) -> None:
    route = route_for(sims.oa1, sims.an2)
    gw = gateway_for(
        route,
        status_feeds=(StatusFeedConfig("sim-a", feed.url, ("openai-1",), poll_every=0.1),),
    )
    feed.say(statuspage("critical"))
    _eventually("demoted", lambda: _feed_state(gw)["demoted"])
    feed.status = 500
    _eventually("the failure is seen", lambda: _feed_state(gw)["failures"] >= 2)
    state = _feed_state(gw)
    assert state["error"] == "HTTP 500"
    assert state["demoted"] is True  # a status page down is not the provider back up
    assert _served_by(gw) == "anthropic-2"
    feed.body, feed.ctype, feed.status = b"<html>maintenance</html>", "text/html", 200
    _eventually("the page is read", lambda: "Atom nor RSS" in str(_feed_state(gw)["error"]))
    # one warning per spell of failures, not one per poll
    assert gw.events.kinds().count("status_feed_unreachable") == 1
    feed.say(statuspage("none"))
    _eventually("cleared", lambda: not _feed_state(gw)["demoted"])
    assert _served_by(gw) == "openai-1"


def test_a_feed_that_never_answers_is_a_warning(sims: Sims, gateway_for: Any) -> None:
    from tests.servers import closed_port

    url = f"http://127.0.0.1:{closed_port()}/api/v2/status.json"
    gw = gateway_for(
        route_for(sims.oa1, sims.an2),
        status_feeds=(StatusFeedConfig("sim-a", url, ("openai-1",), poll_every=0.1),),
    )
    _eventually("the warning", lambda: "status_feed_unreachable" in gw.events.kinds())
    assert _served_by(gw) == "openai-1"


# --- the formats ------------------------------------------------------------------------


def test_statuspage_indicator_and_components() -> None:
    assert parse_statuspage(statuspage("none")).level == "none"
    assert parse_statuspage(statuspage("major")).at_least("major")
    assert not parse_statuspage(statuspage("minor")).at_least("major")
    doc = statuspage("major", API="operational", Playground="major_outage")
    assert parse_statuspage(doc, ["API"]).level == "none"  # only what the plan watches
    assert parse_statuspage(doc, ["API", "Playground"]).level == "critical"
    assert parse_statuspage(statuspage("none", API="partial_outage"), ["API"]).level == "major"
    with pytest.raises(FeedError, match="not in the feed"):
        parse_statuspage(doc, ["Chat"])
    with pytest.raises(FeedError, match="unknown status indicator"):
        parse_statuspage(statuspage("purple"))
    with pytest.raises(FeedError, match="no status object"):
        parse_feed(b'{"page": {}}', "application/json")
    with pytest.raises(FeedError, match="not JSON"):
        parse_feed(b"{nope", "application/json")


ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Sim AI Status - Incident History</title>
  <entry>
    <title>{title}</title>
    <updated>2026-12-02T06:00:00Z</updated>
    <content type="html">&lt;p&gt;&lt;small&gt;Dec 2&lt;/small&gt;&lt;br&gt;&lt;strong&gt;{word}
    &lt;/strong&gt; - {text}&lt;/p&gt;&lt;p&gt;&lt;strong&gt;Investigating&lt;/strong&gt; -
    We are looking into it.&lt;/p&gt;</content>
  </entry>
  <entry><title>Old incident</title><content>Resolved - fine</content></entry>
</feed>"""

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Sim</title>
<item><title>{title}</title><description>{word} - {text}</description></item>
</channel></rss>"""


@pytest.mark.parametrize("template", [ATOM, RSS])
def test_atom_and_rss_newest_entry(template: str) -> None:
    def level(title: str, word: str, text: str) -> str:
        return parse_feed(template.format(title=title, word=word, text=text).encode(), "").level

    assert level("API unavailable", "Identified", "Requests fail") == "major"
    assert level("Elevated latency", "Monitoring", "Slower answers") == "minor"
    assert level("API unavailable", "Resolved", "All good now") == "none"
    empty = '<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>'
    assert parse_feed(empty.encode(), "application/atom+xml").level == "none"


def test_shown_url_drops_credentials_and_query() -> None:
    assert shown_url("https://u:pw@status.example.com:8443/api/v2/summary.json?key=s") == (
        "https://status.example.com:8443/api/v2/summary.json"
    )


def test_the_plan_providers_become_the_gateway_feeds(tmp_path: Path) -> None:
    target = {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9"}
    plan = {
        "version": 1,
        "name": "feeds",
        "tiers": {"critical": {"rto": "5m", "rpo": "1h", "multi_region": True}},
        "repositories": {"primary": {"name": "p", "url": "file:///tmp/x", "region": "eu"}},
        "serving": {
            "routes": [
                {
                    "name": "chat",
                    "tier": "critical",
                    "targets": [
                        {**target, "name": "a", "vendor": "acme", "region": "eu"},
                        {**target, "name": "b", "vendor": "other", "region": "us"},
                    ],
                }
            ]
        },
        "providers": [
            {
                "name": "acme",
                "sla": 99.9,
                "status_url": "https://status.acme.test/api/v2/summary.json",
                "status_poll_every": "30s",
                "status_components": ["API"],
                "status_demote_at": "critical",
            },
            {"name": "other", "sla": 99.9},
            {"name": "unused", "status_url": "https://status.unused.test/api/v2/status.json"},
        ],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(plan))
    [feed] = from_plan(load_plan(path)).status_feeds
    assert feed == StatusFeedConfig(
        "acme",
        "https://status.acme.test/api/v2/summary.json",
        ("a",),
        poll_every=30.0,
        components=("API",),
        demote_at="critical",
    )
    plan["providers"][0]["status_url"] = "status.acme.test"  # type: ignore[index]
    path.write_text(yaml.safe_dump(plan))
    from drkit.errors import PlanError

    with pytest.raises(PlanError, match="http"):
        load_plan(path)


def test_drkit_gateway_serve_polls_the_plan_feeds_and_providers_reads_them(
    sims: Sims, feed: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole path: the plan's providers[].status_url, `drkit gateway serve` (a process),
    its events in drkit's state, `drkit providers`."""
    from test_gateway_processes import chat, serve, write_plan

    from drkit.cli.main import main

    plan = write_plan(tmp_path / "drkit.yaml", sims)
    plan.write_text(
        plan.read_text() + f"providers:\n  - {{name: openai, sla: 99.9, status_url: '{feed.url}',"
        " status_poll_every: 200ms}\n  - {name: anthropic, sla: 99.9}\n"
    )
    feed.say(statuspage("critical"))
    with serve(plan) as url:

        def demoted() -> bool:
            r = httpx.get(url + "/admin/targets", headers={"x-api-key": CLIENT_KEY})
            return bool(r.json()["status_feeds"][0]["demoted"])

        _eventually("the primary is demoted", demoted)
        for _ in range(3):
            assert chat(url).headers["x-drkit-target"] == "anthropic-2"
        assert chat_attempts(sims.oa1) == 0  # before its first failure: none was sent
        capsys.readouterr()
        main(["providers", "--plan", str(plan), "--json"])
        doc = json.loads(capsys.readouterr().out)
        row = next(p for p in doc["providers"] if p["vendor"] == "openai")
        assert row["status_feed"]["state"] == "outage"
        assert row["status_feed"]["level"] == "critical"
        feed.say(statuspage("none"))
        _eventually(
            "back on the primary",
            lambda: chat(url).headers.get("x-drkit-target") == "openai-1",
        )
