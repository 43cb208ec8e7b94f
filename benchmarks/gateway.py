"""Gateway benchmark: direct calls vs ``drkit gateway serve`` vs the LiteLLM proxy.

Everything runs on loopback in one run, against two provider simulators (an OpenAI
primary and an Anthropic secondary; ``drkit simulate provider``), each system configured
with the same two targets, the same 2 s first-token deadline and failover on errors:

1. added latency p50/p99 at concurrency 1 (non-streaming and streaming), vs direct, the
   systems' requests interleaved (shuffled each round) so machine noise hits all alike;
   a bare TCP relay (no HTTP) shows what one more loopback hop costs by itself, and the
   "http floor" (uvicorn + uvloop + httptools serving, one aiohttp session upstream, bytes
   passed back as they come: the least a Python HTTP proxy on drkit's stack does) what
   HTTP on that stack costs, so drkit minus the floor is its own per-request work; CPU time
   per request of each serving process; LiteLLM is measured in its own interleaved pass
   against direct calls, and each pass runs with the other gateway's processes paused
   (SIGSTOP): on 2 cores an idle LiteLLM proxy's background work slowed every system
   measured next to it (drkit's added p50 1 -> 3.7 ms, the bare relay's 0.1 -> 1 ms);
2. throughput at concurrency 32 (requests per second, non-streaming and streaming), the
   systems taking turns in slices, the others paused; CPU time per request;
3. failover time per failure mode (503, refused, black hole, stream cut before the first
   token): the first request after the primary breaks, and the mean of the next five;
4. a 30 s primary outage (503) under steady load: upstream attempts on the primary and
   failed client requests;
5. time until traffic is back on the primary after it recovers, over outages of random
   length (so that the recovery does not line up with a probe by chance).

Run::

    .venv/bin/python benchmarks/gateway.py                 # LiteLLM from /tmp/litellm-venv
    .venv/bin/python benchmarks/gateway.py --no-litellm --outage 10
    .venv/bin/python benchmarks/gateway.py --perf-only     # latency and throughput only

LiteLLM is installed into its own venv so that it cannot pollute drkit's:
``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'``.
It is started with ``LITELLM_OFFLINE_MODE``/``LITELLM_LOCAL_*`` so it makes no outbound
calls. Numbers depend on the machine and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil  # type: ignore[import-untyped]

BIN = Path(sys.executable).parent
SIM_KEY = "sk-bench-sim-" + secrets.token_hex(8)
CLIENT_KEY = "bench-client-" + secrets.token_hex(8)
LITELLM_KEY = "sk-Bench-" + secrets.token_hex(16)
BODY = {"model": "assistant", "messages": [{"role": "user", "content": "How do drills work?"}]}
FIRST_TOKEN = 2.0

#: A byte relay (uvloop, one upstream connection per client connection, no HTTP parsing):
#: what one more loopback hop costs by itself, the floor under any proxy's added latency.
RELAY = """
import asyncio, sys, uvloop

async def main(port, up_port):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", up_port)
        except OSError:
            writer.close()
            return
        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
            except OSError:
                pass
            finally:
                dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    await server.serve_forever()

uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


#: The least a Python HTTP proxy on drkit's own stack does (uvicorn, uvloop and httptools
#: serving; one pooled aiohttp session upstream): read the request, send it on, pass the
#: response's bytes back as they come. No auth, routing, deadlines, parsing or failover:
#: drkit's added latency minus this one's is what its own per-request work costs.
HTTP_FLOOR = """
import sys, aiohttp, uvicorn

UP = "http://127.0.0.1:%s/v1/chat/completions" % sys.argv[2]
session = None

async def app(scope, receive, send):
    global session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    session = session or aiohttp.ClientSession(auto_decompress=False)
    upstream_headers = {
        "authorization": headers[b"authorization"].decode(),
        "content-type": "application/json",
    }
    async with session.post(UP, data=body, headers=upstream_headers) as r:
        ctype = r.headers.get("content-type", "application/json").encode()
        await send({"type": "http.response.start", "status": r.status,
                    "headers": [(b"content-type", ctype)]})
        async for chunk in r.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False, server_header=False, date_header=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(
    cmd: list[str], port: int, env: dict[str, str], log: Path, wait: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{cmd[0]} did not start:\n{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Sim:
    dialect: str
    port: int
    admin: int

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return root + "/v1" if self.dialect == "openai" else root

    def faults(self, *faults: dict[str, Any]) -> None:
        httpx.put(
            f"http://127.0.0.1:{self.admin}/_sim/faults", json=list(faults)
        ).raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.admin}/_sim/stats").json()
        return data

    def chat_requests(self) -> int:
        return int(self.stats()["by_endpoint"].get("chat", 0))


@dataclass
class System:
    """One way of calling the model: its URL, auth, and how to tell who served."""

    name: str
    url: str
    headers: dict[str, str]
    model: str
    primary_marker: str | None = None  # header value that means "the primary served"
    marker_header: str | None = None
    pid: int | None = None  # the serving process (CPU time per request), None for direct
    results: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> float:
        """CPU seconds (user + system) the serving process and its children used so far."""
        if self.pid is None:
            return 0.0
        proc = psutil.Process(self.pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def served_by_primary(self, headers: Any) -> bool | None:
        if self.marker_header is None:
            return None
        value = headers.get(self.marker_header, "")
        return bool(self.primary_marker and self.primary_marker in value)

    def body(self, stream: bool = False) -> dict[str, Any]:
        return {**BODY, "model": self.model, "stream": stream}


# --- measurements -----------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def call(client: httpx.Client, system: System, stream: bool) -> tuple[bool, float, Any]:
    t0 = time.perf_counter()
    try:
        if stream:
            with client.stream(
                "POST", system.url, json=system.body(True), headers=system.headers
            ) as r:
                text = b"".join(r.iter_raw())
                ok = r.status_code == 200 and (b"[DONE]" in text) and b'"error"' not in text
        else:
            r = client.post(system.url, json=system.body(False), headers=system.headers)
            ok = r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
    except httpx.HTTPError:
        return False, time.perf_counter() - t0, {}
    return ok, time.perf_counter() - t0, r.headers


def latency(systems: list[System], n: int, stream: bool) -> dict[str, dict[str, float]]:
    """Latency at concurrency 1, the systems interleaved request by request (in a shuffled
    order each round), so that a noisy machine slows all of them alike."""
    rng = random.Random(7)
    samples: dict[str, list[float]] = {s.name: [] for s in systems}
    cpu: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        clients = {s.name: stack.enter_context(httpx.Client(timeout=30)) for s in systems}
        for _ in range(max(20, n // 10)):
            for s in systems:
                call(clients[s.name], s, stream)
        cpu = {s.name: s.cpu() for s in systems}
        order = list(systems)
        for _ in range(n):
            rng.shuffle(order)
            for s in order:
                ok, dt, _ = call(clients[s.name], s, stream)
                if not ok:
                    raise RuntimeError(f"{s.name}: a request failed during the latency run")
                samples[s.name].append(dt * 1000)
        cpu = {s.name: s.cpu() - cpu[s.name] for s in systems}
    base = samples[systems[0].name]
    out = {}
    for s in systems:
        vals = samples[s.name]
        # the paired difference: each request minus the direct call of the same round
        paired = [v - d for v, d in zip(vals, base, strict=True)]
        out[s.name] = {
            "p50_ms": pct(vals, 0.5),
            "p99_ms": pct(vals, 0.99),
            # over the direct calls of the same pass
            "added_p50_ms": pct(vals, 0.5) - pct(base, 0.5),
            "added_p99_ms": pct(vals, 0.99) - pct(base, 0.99),
            "mean_ms": statistics.mean(vals),
            "paired_p50_ms": pct(paired, 0.5),
            "cpu_ms_per_req": cpu[s.name] * 1000 / n,
        }
    return out


async def _throughput(
    system: System, concurrency: int, seconds: float, stream: bool, warmup: float
) -> tuple[int, int, float, float]:
    ok = failed = 0
    stop_at = 0.0
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker(count: bool) -> None:
            nonlocal ok, failed
            while time.perf_counter() < stop_at:
                try:
                    async with session.post(
                        system.url, json=system.body(stream), headers=system.headers
                    ) as r:
                        data = await r.read()
                        good = r.status == 200 and (not stream or b"[DONE]" in data)
                except aiohttp.ClientError:
                    good = False
                if count:
                    ok, failed = ok + good, failed + (not good)

        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker(False) for _ in range(concurrency)))
        cpu0 = system.cpu()
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker(True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = system.cpu() - cpu0
    return ok, failed, elapsed, cpu


def throughput(
    systems: list[System], concurrency: int, seconds: float, rounds: int, stream: bool = False
) -> dict[str, dict[str, float]]:
    """Requests per second at ``concurrency``; each system runs ``rounds`` slices of
    ``seconds / rounds``, the systems taking turns, so that a load burst on the machine
    does not fall on one system only."""
    totals = {s.name: [0, 0, 0.0, 0.0] for s in systems}
    for r in range(rounds):
        for s in systems:
            with paused([o for o in systems if o is not s]):
                got = asyncio.run(
                    _throughput(s, concurrency, seconds / rounds, stream, 1.0 if r == 0 else 0.3)
                )
            for i, v in enumerate(got):
                totals[s.name][i] += v
    out = {}
    for name, (ok, failed, elapsed, cpu) in totals.items():
        out[name] = {
            "rps": ok / elapsed,
            "failed": failed,
            "cpu_ms_per_req": cpu * 1000 / max(1, ok),
        }
    return out


@contextlib.contextmanager
def paused(systems: list[System]) -> Iterator[None]:
    """The serving processes of ``systems`` (and their children) stopped for the block."""
    procs: list[psutil.Process] = []
    for s in systems:
        if s.pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            top = psutil.Process(s.pid)
            procs += [top, *top.children(recursive=True)]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.suspend()
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.resume()
        if procs:
            time.sleep(0.2)  # let the resumed ones catch up on their timers


def wait_primary(system: System, timeout: float = 60) -> float:
    """Send requests until the primary serves one; seconds it took (inf if never)."""
    start = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        while time.perf_counter() - start < timeout:
            ok, _, headers = call(client, system, False)
            if ok and system.served_by_primary(headers):
                return time.perf_counter() - start
            time.sleep(0.05)
    return float("inf")


FAILURE_MODES: dict[str, tuple[dict[str, Any], bool]] = {
    "503": ({"kind": "error", "status": 503}, False),
    "refused": ({"kind": "refuse"}, False),
    "black hole": ({"kind": "black_hole"}, False),
    "stream cut": ({"kind": "stream_cut", "after": 0}, True),
}


def failover(system: System, primary: Sim) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, (fault, stream) in FAILURE_MODES.items():
        primary.faults()
        wait_primary(system)
        primary.faults(fault)
        with httpx.Client(timeout=60) as client:
            first_ok, first, _ = call(client, system, stream)
            rest = [call(client, system, stream) for _ in range(5)]
        out[mode] = {
            "first_s": first,
            "next5_mean_s": statistics.mean(dt for _, dt, _ in rest),
            "failed": (not first_ok) + sum(not ok for ok, _, _ in rest),
        }
    primary.faults()
    return out


def outage(system: System, primary: Sim, seconds: float, rate: float = 20.0) -> dict[str, Any]:
    primary.faults()
    wait_primary(system)
    before = primary.chat_requests()
    results: list[tuple[float, bool, bool | None]] = []

    async def fire(session: aiohttp.ClientSession, t: float) -> None:
        try:
            async with session.post(
                system.url,
                json=system.body(False),
                headers=system.headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as r:
                await r.read()
                results.append((t, r.status == 200, system.served_by_primary(r.headers)))
        except aiohttp.ClientError:
            results.append((t, False, None))

    async def run() -> tuple[int, float, float]:
        async with aiohttp.ClientSession() as session:
            tasks = []
            start = time.perf_counter()
            primary.faults({"kind": "error", "status": 503})
            attempts = 0
            recovered_at = 0.0
            i = 0
            while True:
                t = i / rate
                now = time.perf_counter() - start
                if t > now:
                    await asyncio.sleep(t - now)
                if t >= seconds and not recovered_at:
                    attempts = primary.chat_requests() - before
                    primary.faults()
                    recovered_at = time.perf_counter() - start
                if t >= seconds + 30:
                    break
                tasks.append(asyncio.create_task(fire(session, t)))
                i += 1
                back = [r for r in results if r[0] >= seconds and r[2]]
                if back and len(results) > 0 and t > seconds + 1:
                    break
            await asyncio.gather(*tasks)
            return attempts, recovered_at, start

    attempts, recovered_at, _ = asyncio.run(run())
    during = [r for r in results if r[0] < seconds]
    back = sorted(r[0] for r in results if r[0] >= recovered_at and r[2])
    return {
        "requests": len(during),
        "failed": sum(not ok for _, ok, _ in during),
        "primary_attempts": attempts,
        "back_on_primary_s": (back[0] - recovered_at) if back else float("inf"),
    }


def recovery(system: System, primary: Sim, trials: int, seed: int = 1) -> dict[str, float]:
    """Time until traffic is back on the primary after it recovers, over several outages
    whose lengths are drawn at random (so the end does not line up with a probe)."""
    rng = random.Random(seed)
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(trials):
            primary.faults()
            wait_primary(system)
            primary.faults({"kind": "error", "status": 503})
            end = time.perf_counter() + rng.uniform(3.0, 7.0)
            while time.perf_counter() < end:
                call(client, system, False)
                time.sleep(0.1)
            primary.faults()
            start = time.perf_counter()
            while True:
                ok, _, headers = call(client, system, False)
                if ok and system.served_by_primary(headers):
                    break
                if time.perf_counter() - start > 60:
                    break
                time.sleep(0.02)
            times.append(time.perf_counter() - start)
    return {"mean_s": statistics.mean(times), "max_s": max(times)}


# --- setup ---------------------------------------------------------------------------------


def drkit_plan(path: Path, a: Sim, b: Sim) -> None:
    path.write_text(
        f"""
version: 1
name: gateway-benchmark
tiers: {{critical: {{rto: 5m, rpo: 15m}}}}
repositories:
  primary: {{name: primary, url: "file://{path.parent}/repo", region: eu-west,
             password_env: DRKIT_PASSWORD}}
serving:
  auth: {{client_keys_env: BENCH_CLIENT_KEYS}}
  gateway:
    health: {{eject_after: 3, eject_for: 60s, probe_every: 2s}}
  routes:
    - name: assistant
      tier: critical
      deadlines: {{connect: 1s, first_token: {FIRST_TOKEN}s, stream_idle: 2s, total: 60s}}
      targets:
        - {{name: primary, provider: openai, region: eu-west, model: sim-large,
           base_url: "{a.base_url}", api_key_env: BENCH_SIM_KEY}}
        - {{name: secondary, provider: anthropic, region: us-east, model: sim-small,
           base_url: "{b.base_url}", api_key_env: BENCH_SIM_KEY}}
"""
    )


def litellm_config(path: Path, a: Sim, b: Sim) -> None:
    path.write_text(
        f"""
model_list:
  - model_name: assistant
    litellm_params: {{model: openai/sim-large, api_base: "{a.base_url}",
                      api_key: os.environ/BENCH_SIM_KEY, timeout: {FIRST_TOKEN},
                      stream_timeout: {FIRST_TOKEN}}}
  - model_name: assistant-fallback
    litellm_params: {{model: anthropic/sim-small, api_base: "{b.base_url}",
                      api_key: os.environ/BENCH_SIM_KEY, timeout: {FIRST_TOKEN},
                      stream_timeout: {FIRST_TOKEN}}}
router_settings:
  num_retries: 0
  allowed_fails: 3
  cooldown_time: 5
litellm_settings:
  num_retries: 0
  request_timeout: {FIRST_TOKEN}
  fallbacks: [{{"assistant": ["assistant-fallback"]}}]
"""
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--litellm", default="/tmp/litellm-venv/bin/litellm")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--n", type=int, default=400, help="requests per latency run")
    ap.add_argument("--seconds", type=float, default=6.0, help="throughput run length")
    ap.add_argument("--rounds", type=int, default=3, help="throughput slices per system")
    ap.add_argument(
        "--perf-only", action="store_true", help="latency and throughput only (no failover)"
    )
    ap.add_argument("--outage", type=float, default=30.0, help="outage length in seconds")
    ap.add_argument("--trials", type=int, default=5, help="recovery trials")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    use_litellm = not args.no_litellm and Path(args.litellm).exists()

    tmp = Path(tempfile.mkdtemp(prefix="drkit-gw-bench-"))
    env = {**os.environ, "BENCH_SIM_KEY": SIM_KEY, "BENCH_CLIENT_KEYS": CLIENT_KEY}
    a = Sim("openai", free_port(), free_port())
    b = Sim("anthropic", free_port(), free_port())
    gw_port, ll_port = free_port(), free_port()
    drkit_plan(tmp / "drkit.yaml", a, b)
    litellm_config(tmp / "litellm.yaml", a, b)
    sim_cmd = [str(BIN / "drkit"), "simulate", "provider", "--api-key-env", "BENCH_SIM_KEY"]
    with contextlib.ExitStack() as stack:
        for sim in (a, b):
            stack.enter_context(
                process(
                    [
                        *sim_cmd,
                        "--dialect",
                        sim.dialect,
                        "--port",
                        str(sim.port),
                        "--admin-port",
                        str(sim.admin),
                    ],
                    sim.port,
                    env,
                    tmp / f"sim-{sim.dialect}.log",
                )
            )
        gw_proc = stack.enter_context(
            process(
                [
                    str(BIN / "drkit"),
                    "gateway",
                    "serve",
                    "--plan",
                    str(tmp / "drkit.yaml"),
                    "--port",
                    str(gw_port),
                ],
                gw_port,
                env,
                tmp / "drkit.log",
            )
        )
        # the two floors, each a Python script of its own in front of the primary
        relay_port, floor_port = free_port(), free_port()
        relay_proc, floor_proc = (
            stack.enter_context(
                process([sys.executable, "-c", src, str(port), str(a.port)], port, env, tmp / log)
            )
            for src, port, log in (
                (RELAY, relay_port, "relay.log"),
                (HTTP_FLOOR, floor_port, "http-floor.log"),
            )
        )
        systems = [
            System(
                "direct",
                a.base_url + "/chat/completions",
                {"authorization": f"Bearer {SIM_KEY}"},
                "sim-large",
            ),
            System(
                "tcp relay",
                f"http://127.0.0.1:{relay_port}/v1/chat/completions",
                {"authorization": f"Bearer {SIM_KEY}"},
                "sim-large",
                pid=relay_proc.pid,
            ),
            System(
                "http floor",
                f"http://127.0.0.1:{floor_port}/v1/chat/completions",
                {"authorization": f"Bearer {SIM_KEY}"},
                "sim-large",
                pid=floor_proc.pid,
            ),
            System(
                "drkit",
                f"http://127.0.0.1:{gw_port}/v1/chat/completions",
                {"authorization": f"Bearer {CLIENT_KEY}"},
                "assistant",
                primary_marker="primary",
                marker_header="x-drkit-target",
                pid=gw_proc.pid,
            ),
        ]
        if use_litellm:
            ll_env = {
                **env,
                "LITELLM_MASTER_KEY": LITELLM_KEY,
                "LITELLM_OFFLINE_MODE": "true",
                "LITELLM_LOCAL_MODEL_COST_MAP": "true",
                "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "true",
                "LITELLM_TELEMETRY": "False",
            }
            ll_proc = stack.enter_context(
                process(
                    [
                        args.litellm,
                        "--config",
                        str(tmp / "litellm.yaml"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(ll_port),
                    ],
                    ll_port,
                    ll_env,
                    tmp / "litellm.log",
                    wait=180,
                )
            )
            systems.append(
                System(
                    "litellm",
                    f"http://127.0.0.1:{ll_port}/v1/chat/completions",
                    {"authorization": f"Bearer {LITELLM_KEY}"},
                    "assistant",
                    primary_marker=f":{a.port}",
                    marker_header="x-litellm-model-api-base",
                    pid=ll_proc.pid,
                )
            )
        print(f"processes: drkit gateway pid {gw_proc.pid}", flush=True)
        for key, stream, n in (("latency", False, args.n), ("latency_stream", True, args.n)):
            print(f"latency (c=1, interleaved, {key}) ...", flush=True)
            peers = [s for s in systems if s.name == "litellm"]
            own = [s for s in systems if s not in peers]
            passes = [own, *([systems[0], p] for p in peers)]
            for group in passes:
                with paused([s for s in systems if s not in group]):
                    for name, res in latency(group, n, stream).items():
                        s = next(s for s in systems if s.name == name)
                        s.results.setdefault(key, res)  # direct: its first pass
        for key, stream in (("throughput", False), ("throughput_stream", True)):
            print(f"throughput (c=32, {key}) ...", flush=True)
            for name, res in throughput(systems, 32, args.seconds, args.rounds, stream).items():
                next(s for s in systems if s.name == name).results[key] = res
        for s in [s for s in systems if s.primary_marker] if not args.perf_only else []:
            print(f"[{s.name}] failover per mode ...", flush=True)
            s.results["failover"] = failover(s, a)
            print(f"[{s.name}] {args.outage:g}s outage ...", flush=True)
            s.results["outage"] = outage(s, a, args.outage)
            print(f"[{s.name}] recovery trials ...", flush=True)
            s.results["recovery"] = recovery(s, a, args.trials)
    report(systems, args.outage, args.perf_only)
    if args.json:
        args.json.write_text(json.dumps({s.name: s.results for s in systems}, indent=2))


def lat_of(by: dict[str, dict[str, Any]], name: str, key: str) -> float:
    return float(by[name][key]["p50_ms"])


def report(systems: list[System], outage_s: float, perf_only: bool = False) -> None:
    by = {s.name: s.results for s in systems}
    d = by["direct"]
    for key, title in (("latency", "non-streaming"), ("latency_stream", "streaming")):
        print(f"\n== latency at concurrency 1, {title} (ms; requests interleaved) ==")
        print(
            f"{'':10} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10} "
            f"{'paired p50':>11} {'CPU/req':>8}"
        )
        for s in systems:
            lat = s.results[key]
            print(
                f"{s.name:10} {lat['p50_ms']:8.2f} {lat['p99_ms']:8.2f} "
                f"{lat['added_p50_ms']:10.2f} {lat['added_p99_ms']:10.2f} "
                f"{lat['paired_p50_ms']:11.2f} {lat['cpu_ms_per_req']:8.2f}"
            )
        own = lat_of(by, "drkit", key) - lat_of(by, "http floor", key)
        print(f"drkit over the http floor (its own per-request work): {own:+.2f} ms (p50)")
    extra = d["latency_stream"]["p50_ms"] - d["latency"]["p50_ms"]
    print(
        f"\ndirect: streaming an answer takes the simulator {extra:+.2f} ms (p50) over returning "
        "it whole;\ndrkit streams from upstream for non-streaming requests too (deadlines), so "
        "its non-streaming added latency includes that"
    )
    print("\n== throughput at concurrency 32 (requests/s; CPU ms per request) ==")
    print(f"{'':10} {'plain':>8} {'CPU/req':>8} {'stream':>8} {'CPU/req':>8}")
    for s in systems:
        t, ts = s.results["throughput"], s.results["throughput_stream"]
        print(
            f"{s.name:10} {t['rps']:8.0f} {t['cpu_ms_per_req']:8.2f} {ts['rps']:8.0f} "
            f"{ts['cpu_ms_per_req']:8.2f}   failed {t['failed'] + ts['failed']}"
        )
    if "litellm" in by:
        for kind in ("throughput", "throughput_stream"):
            ratio = by["drkit"][kind]["rps"] / max(1e-9, by["litellm"][kind]["rps"])
            print(f"drkit / litellm {kind.replace('_', ' ')}: {ratio:.1f}x")
        added_d = by["drkit"]["latency"]["added_p50_ms"]
        added_l = by["litellm"]["latency"]["added_p50_ms"]
        print(f"litellm / drkit added p50 latency: {added_l / max(1e-3, added_d):.1f}x")
    if perf_only:
        return
    print("\n== failover (s): first request after the primary breaks; mean of the next 5 ==")
    for s in [s for s in systems if "failover" in s.results]:
        for mode, r in s.results["failover"].items():
            print(
                f"{s.name:10} {mode:11} first {r['first_s']:7.3f}  next5 {r['next5_mean_s']:7.3f}"
                f"  failed {r['failed']}"
            )
    print(f"\n== {outage_s:g}s primary outage (503) at 20 req/s ==")
    for s in [s for s in systems if "failover" in s.results]:
        o = s.results["outage"]
        print(
            f"{s.name:10} primary attempts {o['primary_attempts']:5}  client requests "
            f"{o['requests']:5}  failed {o['failed']:3}  back on primary "
            f"{o['back_on_primary_s']:.2f}s"
        )
    print("\n== back on the primary after it recovers (outages of random length 3-7 s) ==")
    for s in [s for s in systems if "failover" in s.results]:
        r = s.results["recovery"]
        print(f"{s.name:10} mean {r['mean_s']:.2f}s  max {r['max_s']:.2f}s")
    if "litellm" in by:
        pa = by["litellm"]["outage"]["primary_attempts"] / max(
            1, by["drkit"]["outage"]["primary_attempts"]
        )
        print(f"litellm / drkit primary attempts during the outage: {pa:.1f}x")


if __name__ == "__main__":
    main()
