"""``drkit simulate provider`` as users run it: a real process, faults from the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from drkit.cli.main import main
from drkit.connectors.llm.faults import parse_fault
from drkit.errors import UsageError

DRKIT = str(Path(sys.executable).parent / "drkit")


def test_runs_until_interrupted_with_faults_and_admin_api() -> None:
    with subprocess.Popen(
        [
            DRKIT,
            "simulate",
            "provider",
            "--dialect",
            "anthropic",
            "--seed",
            "3",
            "--json",
            "--fault",
            "error:529,first=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["faults"] == [
                {
                    "kind": "error",
                    "status": 529,
                    "first": 1,
                    "retry_after": 1.0,
                    "after": 3,
                    "mode": "drop",
                    "rate": 1.0,
                    "seen": 0,
                    "fired": 0,
                }
            ]
            url = info["base_url"] + "/v1/messages"
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
            body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(url, json=body, headers=headers).status_code == 529
            assert httpx.post(url, json=body, headers=headers).status_code == 200
            admin = info["admin_url"]
            put = httpx.put(admin + "/_sim/faults", json={"faults": [{"kind": "refuse"}]})
            assert put.json()["faults"][0]["kind"] == "refuse"
            with pytest.raises(httpx.ConnectError):
                httpx.post(url, json=body, headers=headers)
            assert httpx.delete(admin + "/_sim/faults").json() == {"faults": []}
            assert httpx.post(url, json=body, headers=headers).status_code == 200
            assert httpx.get(admin + "/_sim/stats").json()["requests"] == 3
            assert httpx.put(admin + "/_sim/faults", json={"kind": "nope"}).status_code == 400
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--dialect", "gemini"],
        ["--dialect", "openai", "--fault", "meteor"],
        ["--dialect", "openai", "--fault", "error:status=99"],
        ["--dialect", "openai", "--fault", "latency"],
        ["--dialect", "openai", "--api-key-env", "DRKIT_TEST_SURELY_UNSET"],
    ],
)
def test_bad_input_exits_2(args: list[str]) -> None:
    assert main(["simulate", "provider", *args]) == 2


def test_fault_syntax() -> None:
    assert parse_fault("rate_limit:retry_after=2").retry_after == 2
    assert parse_fault("rate_limit:3").retry_after == 3
    f = parse_fault("stream-cut:5,mode=clean,rate=0.5")
    assert (f.kind, f.after, f.mode, f.rate) == ("stream_cut", 5, "clean", 0.5)
    assert parse_fault("black_hole").kind == "black_hole"
    assert parse_fault("error:500,fail_rate=0.25").rate == 0.25
    with pytest.raises(UsageError, match="takes no value"):
        parse_fault("refuse:1")
    with pytest.raises(UsageError, match="unknown fault field"):
        parse_fault("error:503,colour=red")


def _free_run(n: int) -> int:
    """A port P with P..P+n-1 and their admin ports (+10000) all free (bound, then freed)."""
    import socket

    for base in range(20000, 40000, 97):
        socks = []
        try:
            for p in [*range(base, base + n), *range(base + 10000, base + 10000 + n)]:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free run of ports")


def test_simulators_on_neighbouring_ports_do_not_collide() -> None:
    """The README starts two simulators on 9101 and 9102: the first one's admin API must
    not take the second one's port (it was --port + 1)."""
    from drkit.cli.simulate_cmd import default_admin_port

    assert default_admin_port(9101) == 19101
    assert default_admin_port(0) == 0
    assert default_admin_port(60000) == 0  # past 65535: a free port
    port = _free_run(2)
    procs = [
        subprocess.Popen(
            [DRKIT, "simulate", "provider", "--dialect", d, "--port", str(p), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d, p in (("anthropic", port), ("openai", port + 1))
    ]
    try:
        infos = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.communicate(timeout=10)[1]
            infos.append(json.loads(line))
        assert [i["base_url"] for i in infos] == [
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{port + 1}/v1",
        ]
        for info, p in zip(infos, (port, port + 1), strict=True):
            assert info["admin_url"] == f"http://127.0.0.1:{p + 10000}"
            assert httpx.get(info["admin_url"] + "/_sim/stats").json()["requests"] == 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
    assert [p.returncode for p in procs] == [0, 0]
