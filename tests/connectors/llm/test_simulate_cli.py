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
