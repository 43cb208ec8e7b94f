"""Fixtures for the gateway tests: provider simulators, gateways on real uvicorn, Redis.

Four simulators run for the whole session (a primary and a secondary of each dialect);
every test starts with their faults cleared and their counters at zero. A gateway is
started per test (fresh health state) on 127.0.0.1 and a free port, in a thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from gwkit import (
    CLIENT_KEY,
    CLIENT_KEYS_ENV,
    KEY_ENV,
    SIM_KEYS,
    RouteConfig,
    RunningGateway,
    Sims,
    free_port,
    make_config,
    run_gateway,
)
from tests.servers import listening, wait_ready

from drkit.connectors.llm.simulator import ProviderSimulator


@pytest.fixture(scope="session", autouse=True)
def _keys_in_env() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in [*KEY_ENV.values(), CLIENT_KEYS_ENV]}
    for dialect, env in KEY_ENV.items():
        os.environ[env] = SIM_KEYS[dialect]
    os.environ[CLIENT_KEYS_ENV] = f"{CLIENT_KEY},another-key"
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def sims_session() -> Iterator[Sims]:
    started: list[ProviderSimulator] = []
    try:
        for dialect in ("openai", "openai", "anthropic", "anthropic"):
            sim = ProviderSimulator(dialect, seed=7, api_key=SIM_KEYS[dialect])  # type: ignore[arg-type]
            sim.start()
            started.append(sim)
        yield Sims(*started)
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def sims(sims_session: Sims) -> Sims:
    for sim in sims_session.all():
        sim.clear_faults()
        sim.reset_stats()
    return sims_session


@pytest.fixture
def gateway_for() -> Iterator[Any]:
    """``gateway_for(route, ...)`` starts a gateway for the test (stopped after it)."""
    stack = contextlib.ExitStack()

    def start(*routes: RouteConfig, **kw: Any) -> RunningGateway:
        return stack.enter_context(run_gateway(make_config(*routes, **kw)))

    with stack:
        yield start


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
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
