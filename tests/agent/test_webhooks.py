"""Signed webhooks of the agent's alarms, received by a real starlette app on uvicorn
(127.0.0.1) that checks every signature itself: retried on 5xx with the same delivery id,
given up (and recorded) on a 4xx or an unreachable receiver, end to end from a running
agent, and refused at start without a secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.agent.conftest import write_plan
from tests.servers import closed_port, uvicorn_in_thread

from drkit.agent.runner import AgentOptions, run_agent
from drkit.agent.scheduler import Policy
from drkit.agent.webhooks import GAVE_UP_KIND, Webhooks, verify
from drkit.cli.main import main
from drkit.state.store import StateStore

SECRET = "whsec-test-0123456789"


class Receiver:
    """Records what it receives; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        ts = request.headers["x-drkit-timestamp"]
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        self.got.append(
            {
                "doc": json.loads(body),
                "valid": hmac.compare_digest(f"sha256={mac}", request.headers["x-drkit-signature"]),
                "age": abs(time.time() - int(ts)),
                "event": request.headers["x-drkit-event"],
                "delivery": request.headers["x-drkit-delivery"],
                "drkit_verify": verify(SECRET, body, ts, request.headers["x-drkit-signature"]),
            }
        )
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    with uvicorn_in_thread(config, what="the webhook receiver") as base:
        yield rec, f"{base}/hook"


def test_retried_on_5xx_with_the_same_id_and_valid_signatures(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    rec, url = receiver
    rec.statuses = [503, 500]
    state = StateStore(tmp_path / "s.db")
    hooks = Webhooks([url], SECRET, state, agent="a", plan="p", backoff=0.05)
    hooks.notify("rpo.breach", "train", "exceeded", {"target_s": 10})
    hooks.close(10)
    assert len(rec.got) == 3
    assert all(g["valid"] and g["drkit_verify"] and g["age"] < 60 for g in rec.got)
    assert len({g["delivery"] for g in rec.got}) == 1
    doc = rec.got[-1]["doc"]
    assert (doc["kind"], doc["subject"], doc["data"], doc["plan"]) == (
        "rpo.breach",
        "train",
        {"target_s": 10},
        "p",
    )
    assert doc["schema_version"] == 1
    assert rec.got[0]["event"] == "rpo.breach"
    assert state.events(kind=GAVE_UP_KIND) == []
    assert not verify("other-secret", b"{}", str(int(time.time())), "sha256=00")
    state.close()


def test_a_4xx_or_an_unreachable_receiver_is_given_up_and_recorded(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    rec, url = receiver
    rec.statuses = [400]
    state = StateStore(tmp_path / "s.db")
    down = f"http://user:pw@127.0.0.1:{closed_port()}/hook?token=t"
    hooks = Webhooks([url, down], SECRET, state, backoff=0.01, attempts=3)
    hooks.notify("job.overdue", "copy:replica", "late", {})
    hooks.close(10)
    assert len(rec.got) == 1  # a 4xx is not retried
    gave_up = {e.data["url"]: e.data["attempts"] for e in state.events(kind=GAVE_UP_KIND)}
    assert gave_up[url] == 1
    unreachable = next(u for u in gave_up if u != url)
    assert gave_up[unreachable] == 3
    assert "pw" not in unreachable
    assert "token" not in unreachable
    state.close()


@pytest.mark.usefixtures("env")
def test_a_running_agent_signs_its_alarms(
    receiver: tuple[Receiver, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec, url = receiver
    monkeypatch.setenv("DRKIT_WEBHOOK_SECRET", SECRET)
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    shutil.rmtree(tmp_path / "train")  # backup:train fails; its RPO is breached
    caplog.set_level(logging.DEBUG)
    options = AgentOptions(
        max_runtime=2.5,
        rpo_every=0.3,
        overdue_slack=0.5,
        grace=5,
        webhooks=[url],
        policy=Policy(retries=0),
    )
    run_agent(plan, options)
    kinds = {g["doc"]["kind"] for g in rec.got}
    assert {"job.failed", "rpo.breach", "job.overdue"} <= kinds
    assert all(g["valid"] for g in rec.got)
    failed = next(g["doc"] for g in rec.got if g["doc"]["kind"] == "job.failed")
    assert failed["subject"] == "backup:train"
    assert failed["data"]["status"] == "failed"
    assert failed["agent"]  # the lease holder that raised it
    assert SECRET not in caplog.text


@pytest.mark.usefixtures("env")
def test_a_webhook_without_a_secret_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    assert main(["agent", "run", "--plan", str(plan), "--webhook", "http://127.0.0.1:1/h"]) == 2
    assert "--webhook needs a signing secret in $DRKIT_WEBHOOK_SECRET" in capsys.readouterr().err
    assert not (tmp_path / "state" / "state.db").exists()
    assert main(["agent", "run", "--plan", str(plan), "--webhook", "ftp://x/h"]) == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err


def test_one_signature_format_for_the_agent_and_the_status_page() -> None:
    """The agent's alarms and the status page's notices are signed by ONE definition
    (drkit.types), so a receiver's check written for one accepts the other."""
    import drkit.types
    from drkit.agent import webhooks
    from drkit.status import notify

    assert webhooks.sign is notify.sign is drkit.types.sign
    assert webhooks.verify is notify.verify is drkit.types.verify
    ts = int(time.time())
    header = notify.sign(SECRET, b'{"a":1}', ts)
    assert (
        header
        == "sha256="
        + hmac.new(SECRET.encode(), f"{ts}.".encode() + b'{"a":1}', hashlib.sha256).hexdigest()
    )
    assert webhooks.verify(SECRET, b'{"a":1}', str(ts), header)
    assert not webhooks.verify(SECRET, b'{"a":2}', str(ts), header)
    assert not webhooks.verify(
        SECRET, b'{"a":1}', str(ts - 301), notify.sign(SECRET, b'{"a":1}', ts - 301)
    )
