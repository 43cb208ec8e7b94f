"""Gateway events: failovers, ejections, recoveries, for drills and the status page.

An :class:`EventSink` has one method, ``record``. It must not raise into the request
path (a full disk must not fail a chat completion): implementations swallow and count
their own write errors. Kinds used by the gateway:

- ``failover``: an attempt failed and the request moved to the next target;
- ``stream_failure``: a stream broke after its first token (error event or continuation);
- ``ejection``: a target was taken out of service (``data.until`` is epoch seconds);
- ``recovery``: an ejected target was put back in service (``data.via`` probe|traffic);
- ``retry_budget_exhausted``: a failover was refused to protect upstream capacity.

``component`` is ``route/target`` (or ``target`` for health events). Events are
:class:`drkit.state.store.Event` values, the one event type of drkit; a sink numbers its
events by position (``id`` from 1), the JSONL file by line.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from drkit.state.store import Event

__all__ = [
    "Event",
    "EventSink",
    "FanOutEventSink",
    "JsonlEventSink",
    "LoggingEventSink",
    "MemoryEventSink",
    "NullEventSink",
    "read_events",
]


class EventSink(Protocol):
    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        """Record one event; never raises."""


class NullEventSink:
    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        return None


class MemoryEventSink:
    """Keeps events in a list (tests, rehearsals)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        n = len(self.events) + 1
        self.events.append(Event(n, time.time(), kind, component, message, dict(data)))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class JsonlEventSink:
    """Appends one JSON object per line; safe for several processes (O_APPEND, one write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write_errors = 0
        self._lock = threading.Lock()

    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        record = {"at": time.time(), "kind": kind, "component": component, "message": message}
        line = json.dumps({**record, "data": data}, default=str)
        payload = (line + "\n").encode()
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, payload)
                finally:
                    os.close(fd)
        except OSError:
            self.write_errors += 1


class LoggingEventSink:
    """Logs each event as one line (ejections and stream failures as warnings)."""

    WARN = frozenset(
        {
            "ejection",
            "stream_failure",
            "retry_budget_exhausted",
            "status_feed_outage",
            "status_feed_unreachable",
        }
    )

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("drkit.gateway.events")

    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        level = logging.WARNING if kind in self.WARN else logging.INFO
        self.logger.log(level, "%s: %s", kind, message)


class FanOutEventSink:
    """Records every event in each of several sinks (e.g. a JSONL file and the log)."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.record(kind, component, message, data)


def read_events(path: str | Path) -> list[Event]:
    """All events of a JSONL file in order, numbered from 1; a torn last line is skipped.

    Files written before the one ``Event`` type name the time ``ts``; they read the same.
    """
    out: list[Event] = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        at = float(d["at"] if "at" in d else d["ts"])
        n = len(out) + 1
        out.append(Event(n, at, d["kind"], d["component"], d["message"], d.get("data", {})))
    return out


class StateEventSink:
    """Records each event in drkit's state as ``gateway.<kind>`` (the status page and the
    war-room timeline read them there); a write error is counted, never raised."""

    def __init__(self, state: Any) -> None:
        self.state = state  # a drkit.state.store.StateStore
        self.write_errors = 0

    def record(self, kind: str, component: str, message: str, data: dict[str, Any]) -> None:
        try:
            self.state.record_event(f"gateway.{kind}", component, message, data)
        except Exception:  # the request path must not fail on a full disk or a locked db
            self.write_errors += 1
