"""``drkit gateway serve`` stopping and refusing: exit codes as documented."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from gwkit import Sims, free_port
from test_gateway_processes import DRKIT, chat, write_plan


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_exits_0_when_asked_to_stop(sims: Sims, tmp_path: Path, sig: signal.Signals) -> None:
    plan = write_plan(tmp_path / "drkit.yaml", sims)
    port = free_port()
    proc = subprocess.Popen(
        [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert chat(f"http://127.0.0.1:{port}").status_code == 200
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"stopped on {sig.name}" in err


def test_serve_refuses_auth_off_on_a_network_address(sims: Sims, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "drkit.yaml", sims)
    text = plan.read_text()
    plan.write_text(text.replace("  auth: {client_keys_env: ", "  auth: {disabled: true}\n  #"))
    result = subprocess.run(
        [str(DRKIT), "gateway", "serve", "--plan", str(plan), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "not a loopback address" in result.stderr
    assert "allow_unauthenticated_network" in result.stderr
