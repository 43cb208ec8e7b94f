"""Live drills against real ``drkit gateway serve`` processes, provider simulators and a
steady load of official ``openai`` SDK clients (threads of this test process)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.servers import free_port, listening, wait_ready

from drkit.connectors.llm.simulator import ProviderSimulator

CLIENT_KEY = "live-client-key-1"
ADMIN_KEY = "live-admin-key-1"
SIM_KEY = "sk-sim-live-0123456789abcdef"
ENV = {
    "DRKIT_TEST_LIVE_CLIENT_KEYS": CLIENT_KEY,
    "DRKIT_TEST_LIVE_ADMIN_KEYS": ADMIN_KEY,
    "DRKIT_TEST_LIVE_SIM_KEY": SIM_KEY,
}


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


@dataclass
class Sims:
    primary: ProviderSimulator
    secondary: ProviderSimulator


@pytest.fixture(scope="session")
def sims_session() -> Iterator[Sims]:
    a = ProviderSimulator("openai", seed=3, api_key=SIM_KEY)
    b = ProviderSimulator("openai", seed=4, api_key=SIM_KEY)
    a.start()
    b.start()
    try:
        yield Sims(a, b)
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def sims(sims_session: Sims) -> Sims:
    for s in (sims_session.primary, sims_session.secondary):
        s.clear_faults()
        s.reset_stats()
    return sims_session


def more_routes(sims: Sims) -> str:
    """Two more routes for a regional exercise: ``search`` in both regions (drained with
    ``assistant``) and ``batch`` in us-east only (not affected by losing eu-west)."""
    return f"""
    - name: search
      tier: critical
      deadlines: {{connect: 2s, first_token: 5s, stream_idle: 5s, total: 20s}}
      targets:
        - {{name: eu-search, provider: openai, region: eu-west, model: sim-small,
           base_url: "{sims.primary.base_url}", api_key_env: DRKIT_TEST_LIVE_SIM_KEY}}
        - {{name: us-search, provider: openai, region: us-east, model: sim-small,
           base_url: "{sims.secondary.base_url}", api_key_env: DRKIT_TEST_LIVE_SIM_KEY}}
    - name: batch
      tier: critical
      targets:
        - {{name: us-batch, provider: openai, region: us-east, model: sim-small,
           base_url: "{sims.secondary.base_url}", api_key_env: DRKIT_TEST_LIVE_SIM_KEY}}"""


def write_plan(
    directory: Path,
    sims: Sims,
    *,
    max_error_rate: float = 0.01,
    max_fraction: float = 0.5,
    routes: str = "",
) -> Path:
    """The plan of the gateway under test; ``routes``: more routes (:func:`more_routes`)."""
    plan = directory / "drkit.yaml"
    plan.write_text(
        f"""
version: 1
name: live-test
tiers:
  critical: {{rto: 5m, rpo: 15m}}
repositories:
  primary: {{name: primary, url: "file://{directory}/repo", region: eu-west,
             password_env: DRKIT_TEST_UNUSED_PW}}
serving:
  auth: {{client_keys_env: DRKIT_TEST_LIVE_CLIENT_KEYS,
          admin_keys_env: DRKIT_TEST_LIVE_ADMIN_KEYS}}
  gateway:
    health: {{eject_after: 3, eject_for: 30s, probe_every: 300ms}}
  routes:
    - name: assistant
      tier: critical
      deadlines: {{connect: 2s, first_token: 5s, stream_idle: 5s, total: 20s}}
      targets:
        - {{name: eu-primary, provider: openai, region: eu-west, model: sim-large,
           base_url: "{sims.primary.base_url}", api_key_env: DRKIT_TEST_LIVE_SIM_KEY}}
        - {{name: us-secondary, provider: openai, region: us-east, model: sim-large,
           base_url: "{sims.secondary.base_url}", api_key_env: DRKIT_TEST_LIVE_SIM_KEY}}{routes}
testing:
  live_limits: {{max_fraction: {max_fraction}, max_duration: 2m, lease: 3s,
                 max_error_rate: {max_error_rate}, max_added_p99: 5s}}
"""
    )
    return plan


def drkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "drkit", *args]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``drkit ARGS`` in this process (no interpreter start-up: the drill is the same code
    as in its own process; the kill -9 tests start that one)."""
    from drkit.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def serve_many(plan: Path, n: int, *extra: str) -> Iterator[list[str]]:
    """``n`` processes of ``drkit gateway serve``, started together; their URLs."""
    procs: list[tuple[int, Path, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(n):
            port = free_port()
            log = plan.parent / f"gateway-{port}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    drkit("gateway", "serve", "--plan", str(plan), "--port", str(port), *extra),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append((port, log, proc))
        for port, log, proc in procs:
            wait_ready(listening(port), what="drkit gateway serve", proc=proc, log=log, timeout=30)
        yield [f"http://127.0.0.1:{port}" for port, _, _ in procs]
    finally:
        for _, _, proc in procs:
            proc.send_signal(signal.SIGTERM)
        for _, _, proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def serve(plan: Path, *extra: str) -> Iterator[str]:
    """``drkit gateway serve`` in its own process; its URL."""
    with serve_many(plan, 1, *extra) as urls:
        yield urls[0]


def lifted_fault(url: str) -> dict[str, Any]:
    """The newest fault the gateway lifted, as it recorded it (its own clock)."""
    r = httpx.get(url + "/admin/live-faults", headers={"x-api-key": ADMIN_KEY}, timeout=5)
    r.raise_for_status()
    lifted = [f for f in r.json()["live_faults"] if f["state"] == "lifted"]
    out: dict[str, Any] = lifted[0]
    return out


def admin_view(url: str) -> dict[str, Any]:
    r = httpx.get(url + "/admin/targets", headers={"x-api-key": ADMIN_KEY}, timeout=5)
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


@dataclass
class Answer:
    at: float
    ok: bool
    target: str | None
    reasons: str
    latency: float
    url: str = ""
    model: str = "assistant"


@dataclass
class Load:
    """Official openai SDK clients sending requests back to back until stopped."""

    urls: list[str]
    clients: int = 4
    #: the routes (model names) the clients ask, client i the i-th modulo their number
    models: tuple[str, ...] = ("assistant",)
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, url: str, model: str) -> None:
        client = openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    raw = client.chat.completions.with_raw_response.create(
                        model=model, messages=[{"role": "user", "content": "hi"}]
                    )
                    done = raw.parse()
                    ok = bool(done.choices and done.choices[0].message.content)
                    self.answers.append(
                        Answer(
                            time.time(),
                            ok,
                            raw.headers.get("x-drkit-target"),
                            raw.headers.get("x-drkit-failover-reason", ""),
                            time.monotonic() - t0,
                            url,
                            model,
                        )
                    )
                except openai.OpenAIError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    self.answers.append(Answer(time.time(), False, None, "", 0.0, url, model))
        finally:
            client.close()

    def __enter__(self) -> Load:
        for i in range(self.clients):
            url, model = self.urls[i % len(self.urls)], self.models[i % len(self.models)]
            t = threading.Thread(target=self._run, args=(url, model))
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def since(self, at: float, url_filter: Callable[[Answer], bool] | None = None) -> list[Answer]:
        return [a for a in self.answers if a.at >= at and (url_filter is None or url_filter(a))]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> float:
    """Seconds it took until ``predicate()``; AssertionError after ``timeout``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not reached within {timeout}s: {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-live")
    log = workdir / "redis.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(listening(port), what="redis-server", proc=proc, log=log, timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


__all__ = [
    "ADMIN_KEY",
    "Load",
    "admin_view",
    "drkit",
    "lifted_fault",
    "os",
    "serve",
    "wait_for",
    "write_plan",
]
