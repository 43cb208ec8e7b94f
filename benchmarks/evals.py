"""Eval benchmark: ``drkit eval run`` throughput through the gateway vs direct, and the
quality canary's time from a quality fault to the target being held out.

Everything runs on loopback in one process, against provider simulators in echo mode
(``drkit simulate provider``'s engine) and the real gateway app on uvicorn in a thread:

1. examples per second of :func:`drkit.evals.run_examples` (the engine of ``drkit eval
   run``) at concurrency 1 and 32, through the gateway's route and straight to the
   target, the two interleaved per round so machine noise hits both alike;
2. the time from a ``wrong_answer`` fault on the primary to the canary holding it out
   (``gateway.quality_degraded``) under steady client traffic, per trial, with the canary
   interval; and back (``quality_recovered``) once the fault is cleared.

Run::

    .venv/bin/python benchmarks/evals.py                  # 400 examples, 5 trials
    .venv/bin/python benchmarks/evals.py --examples 100 --trials 2 --every 0.5

Numbers depend on the machine and its load (``uptime`` is printed); compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from drkit.connectors.llm.simulator import ProviderSimulator  # noqa: E402
from drkit.evals import Endpoint, load_eval_set, run_examples  # noqa: E402
from drkit.gateway.config import from_plan  # noqa: E402
from drkit.gateway.events import MemoryEventSink  # noqa: E402
from drkit.gateway.server import uvicorn_config  # noqa: E402
from drkit.plan.loader import load_plan  # noqa: E402
from drkit.workspace.canary import canary_from_plan  # noqa: E402

KEY = "sk-bench-evals"
PLAN = """\
version: 1
name: bench-evals
tiers: {{critical: {{rto: 5m, rpo: 1h, quality: {{floor: 0.9}}}}}}
repositories: {{primary: {{name: p, url: "file://{root}/repo", region: eu}}}}
serving:
  auth: {{disabled: true}}
  gateway: {{retry_budget: 0.2}}
  routes:
    - name: assistant
      tier: critical
      canary: {{eval_set: canary.jsonl, every: {every}s, max_share: 0.2}}
      targets:
        - {{name: primary, provider: openai, region: eu, model: m, base_url: "{a}",
            api_key_env: BENCH_EVALS_KEY}}
        - {{name: secondary, provider: openai, region: us, model: m, base_url: "{b}",
            api_key_env: BENCH_EVALS_KEY}}
"""


@contextmanager
def gateway(config: uvicorn.Config) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def write_set(path: Path, n: int) -> Path:
    rows = [
        {"id": f"q{i}", "prompt": f"step {i}: s{i}", "expected": f"s{i}", "scorer": "contains"}
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def throughput(gw_url: str, direct: str, eval_set: Path, rounds: int) -> dict[str, Any]:
    es = load_eval_set(eval_set)
    via = Endpoint(gw_url + "/v1", "openai", "assistant", None, "route")
    straight = Endpoint(direct, "openai", "m", KEY, "target")
    out: dict[str, Any] = {}
    for conc in (1, 32):
        rates: dict[str, list[float]] = {"gateway": [], "direct": []}
        for r in range(rounds):
            order = [("gateway", via), ("direct", straight)]
            if r % 2:
                order.reverse()
            for name, ep in order:
                t0 = time.perf_counter()
                results = asyncio.run(run_examples(es, ep, concurrency=conc))
                took = time.perf_counter() - t0
                assert all(x.error is None and x.score == 1.0 for x in results), name
                rates[name].append(len(results) / took)
        out[f"c{conc}"] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    return out


def fault_to_hold(
    gw_url: str, primary: ProviderSimulator, canary: Any, sink: MemoryEventSink, trials: int
) -> dict[str, Any]:
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=gw_url) as c:
            while not stop.is_set():
                c.post(
                    "/v1/chat/completions",
                    json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
                )

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    held, back = [], []
    try:
        time.sleep(2.0)  # the budget window fills with client requests
        for _ in range(trials):
            n = len(sink.events)
            t0 = time.monotonic()
            primary.set_faults({"kind": "wrong_answer"})
            while not canary.is_held("primary"):
                time.sleep(0.005)
            held.append(time.monotonic() - t0)
            t1 = time.monotonic()
            primary.set_faults()
            while canary.is_held("primary"):
                time.sleep(0.005)
            back.append(time.monotonic() - t1)
            assert [e.kind for e in sink.events[n:] if e.kind.startswith("quality")] == [
                "quality_degraded",
                "quality_recovered",
            ]
    finally:
        stop.set()
        for t in threads:
            t.join()
    return {
        "fault_to_held_s": [round(x, 3) for x in held],
        "fault_to_held_median_s": round(statistics.median(held), 3),
        "fix_to_released_median_s": round(statistics.median(back), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--every", type=float, default=1.0, help="canary interval (s)")
    args = ap.parse_args()
    os.environ["BENCH_EVALS_KEY"] = KEY
    a = ProviderSimulator("openai", seed=1, mode="echo", api_key=KEY)
    b = ProviderSimulator("openai", seed=2, mode="echo", api_key=KEY)
    a.start()
    b.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            eval_set = write_set(root / "bench.jsonl", args.examples)
            write_set(root / "canary.jsonl", 3)
            plan_file = root / "drkit.yaml"
            plan_file.write_text(
                PLAN.format(root=root, a=a.base_url, b=b.base_url, every=args.every)
            )
            plan = load_plan(plan_file)
            sink = MemoryEventSink()
            canary = canary_from_plan(plan)
            config = uvicorn_config(from_plan(plan), events=sink, canary=canary)
            with gateway(config) as url:
                result = {
                    "examples": args.examples,
                    "examples_per_s": throughput(url, a.base_url, eval_set, args.rounds),
                    "canary_every_s": args.every,
                    **fault_to_hold(url, a, canary, sink, args.trials),
                    "load": os.getloadavg(),
                }
    finally:
        a.stop()
        b.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
