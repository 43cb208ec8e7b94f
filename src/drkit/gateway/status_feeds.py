"""Providers' status feeds: a provider that announces an outage stops getting traffic.

The plan may give each provider a ``status_url`` (``providers[].status_url``). The gateway
polls it every ``status_poll_every`` and, while the feed's level is at or above
``status_demote_at``, *demotes* every target of that vendor: the health board tries them
after all other targets of a route (:attr:`drkit.gateway.health.HealthBoard.demoted`), so
traffic moves to the secondaries before the first failure is seen, and still reaches the
demoted targets when nothing else is left (a panic is better than a 503). When the feed
clears, the targets are promoted back at once.

Feed formats (the level is Statuspage's indicator: ``none < minor < major < critical``):

- Statuspage JSON, ``/api/v2/status.json`` or ``/api/v2/summary.json``: ``status.indicator``;
  with ``status_components``, the worst status of those components in ``components``
  (``degraded_performance``/``under_maintenance`` minor, ``partial_outage`` major,
  ``major_outage`` critical);
- Atom or RSS incident feeds (Statuspage's ``history.atom``/``history.rss`` and the
  like): the newest entry; its latest update resolved (``resolved``, ``completed``) is
  ``none``; unresolved, ``major`` when it speaks of an outage or of being down or
  unavailable, else ``minor``.

A feed that cannot be fetched or read changes nothing (a status page down is not the
provider down): a ``status_feed_unreachable`` event once per spell (``drkit gateway
serve`` logs it, and ``status_feed_outage``, as warnings: LoggingEventSink).
Events (``component`` = the vendor): ``status_feed_outage`` (targets demoted),
``status_feed_clear`` (promoted back), ``status_feed_unreachable``. Never raises into the
gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from drkit.gateway.events import EventSink, NullEventSink

log = logging.getLogger("drkit.gateway.status_feeds")

Level = Literal["none", "minor", "major", "critical"]
LEVELS: tuple[Level, ...] = ("none", "minor", "major", "critical")
_COMPONENT_LEVEL: dict[str, Level] = {
    "operational": "none",
    "degraded_performance": "minor",
    "under_maintenance": "minor",
    "partial_outage": "major",
    "major_outage": "critical",
}
#: a status feed larger than this is not a status feed
MAX_FEED_BYTES = 2 * 1024 * 1024
_RESOLVED = re.compile(r"\b(resolved|completed)\b")
_UPDATE = re.compile(
    r"\b(resolved|completed|monitoring|identified|investigating|update|in progress|scheduled)\b"
)
_OUTAGE = re.compile(r"\b(outage|down|unavailable|not available|elevated error)")
_TAG = re.compile(r"<[^>]+>")


class FeedError(Exception):
    """A feed that could not be fetched or read (the message says why, without secrets)."""


@dataclass(frozen=True, slots=True)
class StatusFeedConfig:
    """One provider's feed and the gateway targets it speaks for."""

    vendor: str
    url: str
    targets: tuple[str, ...]
    poll_every: float = 60.0
    components: tuple[str, ...] = ()
    demote_at: Level = "major"
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class FeedReading:
    level: Level
    description: str

    def at_least(self, level: Level) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(level)


def _level(value: Any, where: str) -> Level:
    text = str(value).lower()
    if text == "maintenance":
        return "minor"
    for level in LEVELS:
        if level == text:
            return level
    raise FeedError(f"unknown status indicator {value!r} in {where}")


def parse_statuspage(doc: Any, components: Sequence[str] = ()) -> FeedReading:
    """The level of a Statuspage ``status.json`` / ``summary.json`` document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), dict):
        raise FeedError("not a Statuspage document: no status object")
    status = doc["status"]
    if not components:
        return FeedReading(
            _level(status.get("indicator"), "status.indicator"),
            str(status.get("description") or ""),
        )
    listed = {
        str(c.get("name")): str(c.get("status"))
        for c in doc.get("components") or []
        if isinstance(c, dict)
    }
    missing = [c for c in components if c not in listed]
    if missing:
        raise FeedError(
            f"components {missing} are not in the feed (summary.json lists components; "
            f"it has: {sorted(listed)[:10]})"
        )
    worst: Level = "none"
    said = []
    for name in components:
        level = _COMPONENT_LEVEL.get(listed[name])
        if level is None:
            raise FeedError(f"component {name!r} has an unknown status {listed[name]!r}")
        if LEVELS.index(level) > LEVELS.index(worst):
            worst = level
        if level != "none":
            said.append(f"{name}: {listed[name]}")
    return FeedReading(worst, "; ".join(said) or "components operational")


def _text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    raw = "".join(el.itertext())
    return " ".join(_TAG.sub(" ", raw).split())


def parse_syndication(body: bytes) -> FeedReading:
    """The level of an Atom or RSS incident feed: its newest entry (see the module doc)."""
    try:
        root = ET.fromstring(body)  # expat: no external entities; entity expansion bounded
    except ET.ParseError as exc:
        raise FeedError(f"not XML: {exc}") from None
    atom = "{http://www.w3.org/2005/Atom}"
    if root.tag == atom + "feed":
        entries = root.findall(atom + "entry")
        parts = [(atom + "title",), (atom + "content", atom + "summary")]
    elif root.tag == "rss":
        entries = root.findall("./channel/item")
        parts = [("title",), ("description",)]
    else:
        raise FeedError(f"neither Atom nor RSS: root element {root.tag!r}")
    if not entries:
        return FeedReading("none", "no incidents in the feed")
    newest = entries[0]  # feeds list the newest first
    title = _text(newest.find(parts[0][0]))
    body_text = " ".join(_text(newest.find(tag)) for tag in parts[1])
    text = f"{title} {body_text}".lower()
    latest = _UPDATE.search(body_text.lower()) or _UPDATE.search(title.lower())
    if latest is not None and _RESOLVED.fullmatch(latest.group(1)):
        return FeedReading("none", f"resolved: {title}")
    return FeedReading("major" if _OUTAGE.search(text) else "minor", title)


def parse_feed(body: bytes, content_type: str, components: Sequence[str] = ()) -> FeedReading:
    """Read a fetched feed: JSON (Statuspage) or XML (Atom/RSS), by content, not by name."""
    head = body.lstrip()[:1]
    if head in (b"{", b"[") or "json" in content_type:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedError(f"not JSON: {exc}") from None
        return parse_statuspage(doc, components)
    if components:
        raise FeedError("status_components needs a Statuspage JSON feed (summary.json)")
    return parse_syndication(body)


def shown_url(url: str) -> str:
    """The URL without credentials or query (what events and logs may say)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class FeedState:
    """What the gateway knows of one feed (``/admin/targets``' ``status_feeds``)."""

    config: StatusFeedConfig
    level: Level | None = None  # None: never read
    description: str = ""
    demoted: bool = False
    checked_at: float | None = None
    changed_at: float | None = None
    error: str | None = None
    polls: int = 0
    failures: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "vendor": self.config.vendor,
            "url": shown_url(self.config.url),
            "targets": list(self.config.targets),
            "level": self.level,
            "description": self.description,
            "demote_at": self.config.demote_at,
            "demoted": self.demoted,
            "checked_at": self.checked_at,
            "changed_at": self.changed_at,
            "error": self.error,
            "polls": self.polls,
            "failures": self.failures,
        }


Fetch = Callable[[StatusFeedConfig], Any]  # async (config) -> (bytes, content type)


@dataclass
class StatusFeeds:
    """Polls every feed and holds its vendor's targets in ``demoted`` while it says outage.

    ``demoted`` is the health board's mapping (target name -> why); the gateway passes
    :attr:`drkit.gateway.health.HealthBoard.demoted`.
    """

    feeds: Iterable[StatusFeedConfig]
    demoted: dict[str, str]
    events: EventSink = field(default_factory=NullEventSink)
    clock: Callable[[], float] = time.time
    fetch: Fetch | None = None

    def __post_init__(self) -> None:
        self.states = [FeedState(f) for f in self.feeds]
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def snapshot(self) -> list[dict[str, Any]]:
        return [s.public() for s in self.states]

    def start(self) -> None:
        if not self.states or self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(s)) for s in self.states]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self, state: FeedState) -> None:
        while True:
            await self.poll(state)
            await asyncio.sleep(state.config.poll_every)

    async def _get(self, feed: StatusFeedConfig) -> tuple[bytes, str]:
        if self.fetch is not None:
            body, ctype = await self.fetch(feed)
            return bytes(body), str(ctype)
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=True, headers={"accept": "application/json, */*"}
            )
        try:
            async with self._client.stream("GET", feed.url, timeout=feed.timeout) as resp:
                if resp.status_code != 200:
                    raise FeedError(f"HTTP {resp.status_code}")
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise FeedError(f"larger than {MAX_FEED_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks), resp.headers.get("content-type", "")
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}".replace(feed.url, shown_url(feed.url))
            raise FeedError(why) from None

    async def poll(self, state: FeedState) -> None:
        """Read one feed once and demote or promote its targets; never raises."""
        feed = state.config
        state.polls += 1
        try:
            body, ctype = await self._get(feed)
            reading = parse_feed(body, ctype, feed.components)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # FeedError, and anything a broken feed may provoke
            log.debug("status feed of %s not read", feed.vendor, exc_info=True)
            self._unreachable(state, str(exc) if isinstance(exc, FeedError) else repr(exc))
            return
        now = self.clock()
        state.checked_at, state.error = now, None
        if reading.level != state.level:
            state.changed_at = now
        state.level, state.description = reading.level, reading.description
        outage = reading.at_least(feed.demote_at)
        if outage and not state.demoted:
            self._demote(state, reading)
        elif not outage and state.demoted:
            self._promote(state, reading)

    def _data(self, state: FeedState) -> dict[str, Any]:
        return {
            "vendor": state.config.vendor,
            "url": shown_url(state.config.url),
            "level": state.level,
            "description": state.description,
            "targets": list(state.config.targets),
        }

    def _demote(self, state: FeedState, reading: FeedReading) -> None:
        state.demoted = True
        why = f"status feed of {state.config.vendor}: {reading.level} ({reading.description})"
        for name in state.config.targets:
            self.demoted[name] = why
        self.events.record(
            "status_feed_outage",
            state.config.vendor,
            f"{why}: targets {', '.join(state.config.targets)} demoted",
            self._data(state),
        )

    def _promote(self, state: FeedState, reading: FeedReading) -> None:
        state.demoted = False
        for name in state.config.targets:
            self.demoted.pop(name, None)
        self.events.record(
            "status_feed_clear",
            state.config.vendor,
            f"status feed of {state.config.vendor} is {reading.level} again: targets "
            f"{', '.join(state.config.targets)} back in order",
            self._data(state),
        )

    def _unreachable(self, state: FeedState, why: str) -> None:
        state.failures += 1
        first = state.error is None
        state.error = why
        if not first:
            return
        url = shown_url(state.config.url)
        self.events.record(
            "status_feed_unreachable",
            state.config.vendor,
            f"status feed of {state.config.vendor} ({url}) not read: {why}; its targets "
            f"stay as they were",
            {**self._data(state), "error": why},
        )
