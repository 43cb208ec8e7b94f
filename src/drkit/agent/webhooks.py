"""The agent's alarms as signed webhooks: ``rpo.breach``, ``job.overdue``, ``job.failed``.

``drkit agent run --webhook URL`` POSTs each alarm the leader raises to every URL, as JSON
(``schema_version``, ``id``, ``kind``, ``subject``, ``message``, ``at``, ``agent``,
``plan``, ``data``) with the headers

- ``X-Drkit-Timestamp``: the epoch second it was signed;
- ``X-Drkit-Signature``: ``sha256=HEX``, the HMAC-SHA256 of ``TIMESTAMP.BODY`` under the
  secret in ``$DRKIT_WEBHOOK_SECRET`` (:func:`sign`; a receiver checks it with
  :func:`verify` and refuses old timestamps);
- ``X-Drkit-Event``: the kind; ``X-Drkit-Delivery``: the id (the same on every retry).

Delivery is in a background thread, never in the scheduler's way: connection errors,
timeouts, 429 and 5xx are retried with exponential backoff (each retry re-signed with a
fresh timestamp), up to :data:`MAX_ATTEMPTS`; another 4xx or the last failure records a
``webhook.gave_up`` event in drkit's state. On stop, what is queued gets ``grace`` seconds.
The secret is never logged nor part of an error; a URL's userinfo is not logged either.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from drkit.errors import UsageError
from drkit.state.store import StateStore
from drkit.types import SIGNATURE_TOLERANCE_S as SIGNATURE_TOLERANCE_S
from drkit.types import sign as sign
from drkit.types import verify as verify

log = logging.getLogger("drkit.agent")

SECRET_ENV = "DRKIT_WEBHOOK_SECRET"
MAX_ATTEMPTS = 5
#: the first retry waits this long, each further one twice as long
BACKOFF_S = 1.0
TIMEOUT_S = 10.0
GAVE_UP_KIND = "webhook.gave_up"


def _shown(url: str) -> str:
    """``url`` for logs and events: no userinfo, no query (either may carry a token)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host, query="").geturl()


def check_urls(urls: Sequence[str]) -> str | None:
    """The secret for ``urls`` (``None`` without urls); ``UsageError`` for a URL that is
    not http(s) or a missing secret — before the agent starts."""
    if not urls:
        return None
    for url in urls:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise UsageError(f"--webhook {url!r}: expected an http:// or https:// URL")
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise UsageError(
            f"--webhook needs a signing secret in ${SECRET_ENV}",
            hint=f"export {SECRET_ENV}=... (the receiver checks X-Drkit-Signature with it)",
        )
    return secret


@dataclass(frozen=True, slots=True)
class _Delivery:
    url: str
    id: str
    kind: str
    body: bytes


class Webhooks:
    """Signed POSTs of alarms to ``urls``, from a background thread (see the module)."""

    def __init__(
        self,
        urls: Sequence[str],
        secret: str,
        state: StateStore,
        *,
        agent: str = "",
        plan: str = "",
        backoff: float = BACKOFF_S,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.urls = list(urls)
        self._secret = secret
        self.state = state
        self.agent = agent
        self.plan = plan
        self.backoff = backoff
        self.attempts = attempts
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._stopping = threading.Event()
        self._client = httpx.Client(timeout=TIMEOUT_S)
        self._thread = threading.Thread(target=self._work, name="drkit-agent webhooks")
        self._thread.start()

    def __repr__(self) -> str:
        return f"Webhooks({[_shown(u) for u in self.urls]!r})"

    def notify(self, kind: str, subject: str, message: str, data: Mapping[str, Any]) -> None:
        """Queue one alarm for every URL (returns at once)."""
        delivery_id = uuid.uuid4().hex
        doc = {
            "schema_version": 1,
            "id": delivery_id,
            "kind": kind,
            "subject": subject,
            "message": message,
            "at": time.time(),
            "agent": self.agent,
            "plan": self.plan,
            "data": dict(data),
        }
        body = json.dumps(doc, default=str, sort_keys=True).encode()
        for url in self.urls:
            self._queue.put(_Delivery(url, delivery_id, kind, body))

    def close(self, grace: float = 5.0) -> None:
        """Deliver what is queued for up to ``grace`` seconds (retry waits cut short
        after it), then stop the thread and close the connections."""
        self._queue.put(None)
        self._thread.join(grace)
        self._stopping.set()
        self._thread.join()
        self._client.close()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(item)

    def _post(self, item: _Delivery) -> tuple[bool, bool, str]:
        """One attempt: (delivered, retry, why not)."""
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Drkit-Timestamp": str(ts),
            "X-Drkit-Signature": sign(self._secret, item.body, ts),
            "X-Drkit-Event": item.kind,
            "X-Drkit-Delivery": item.id,
        }
        try:
            resp = self._client.post(item.url, content=item.body, headers=headers)
        except httpx.HTTPError as exc:
            return False, True, type(exc).__name__
        if resp.is_success:
            return True, False, ""
        retry = resp.status_code == 429 or resp.status_code >= 500
        return False, retry, f"HTTP {resp.status_code}"

    def _deliver(self, item: _Delivery) -> None:
        where = _shown(item.url)
        for attempt in range(1, self.attempts + 1):
            ok, retry, why = self._post(item)
            if ok:
                log.info("webhook %s to %s delivered (attempt %d)", item.kind, where, attempt)
                return
            if not retry or attempt == self.attempts or self._stopping.is_set():
                break
            wait = self.backoff * 2 ** (attempt - 1)
            log.warning("webhook %s to %s: %s; retry in %.1fs", item.kind, where, why, wait)
            self._stopping.wait(wait)
        log.error("webhook %s to %s not delivered: %s", item.kind, where, why)
        try:
            self.state.record_event(
                GAVE_UP_KIND,
                item.kind,
                f"webhook to {where} not delivered after {attempt} attempt(s): {why}",
                {"url": where, "id": item.id, "kind": item.kind, "attempts": attempt},
            )
        except Exception as exc:  # the state may be gone too: the log has it
            log.error("could not record %s: %s", GAVE_UP_KIND, exc)
