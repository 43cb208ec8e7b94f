"""The suite's own guards: a clean environment per test, server start-up that fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import cleared_variables
from tests.servers import listening, log_tail, wait_ready

ROOT = Path(__file__).resolve().parents[1]


def test_drkit_and_aws_variables_are_cleared_but_the_suites_own_are_kept() -> None:
    environ = {
        "DRKIT_REPO": "/srv/real-repo",
        "DRKIT_PASSWORD": "real",
        "DRKIT_STATE": "/srv/state.db",
        "AWS_PROFILE": "prod",
        "AWS_SECRET_ACCESS_KEY": "x",
        "DRKIT_TEST_OPENAI_KEY": "sk-sim",
        "DRKIT_FULL_CAMPAIGN": "1",
        "HOME": "/root",
    }
    assert sorted(cleared_variables(environ)) == [
        "AWS_PROFILE",
        "AWS_SECRET_ACCESS_KEY",
        "DRKIT_PASSWORD",
        "DRKIT_REPO",
        "DRKIT_STATE",
    ]
    # a configured cloud run keeps the credentials it runs with
    cloud = {**environ, "DRKIT_TEST_S3_URL": "s3://bucket/ci"}
    assert sorted(cleared_variables(cloud)) == ["DRKIT_PASSWORD", "DRKIT_REPO", "DRKIT_STATE"]


def test_a_test_does_not_see_the_developers_drkit_variables(tmp_path: Path) -> None:
    """End to end: pytest started with DRKIT_REPO and AWS_PROFILE set; the test sees neither."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import _clean_environment  # noqa\n")
    (tmp_path / "test_inner.py").write_text(
        "import os\n"
        "def test_inner():\n"
        "    assert 'DRKIT_REPO' not in os.environ\n"
        "    assert 'AWS_PROFILE' not in os.environ\n"
        "    assert os.environ['DRKIT_TEST_MARKER'] == 'kept'\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "DRKIT_REPO": "/srv/real-repo",
        "AWS_PROFILE": "prod",
        "DRKIT_TEST_MARKER": "kept",
    }
    env.pop("DRKIT_TEST_S3_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_a_server_that_dies_fails_the_test_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stderr.write('bind: address in use'); exit(3)"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with pytest.raises(pytest.fail.Exception) as info:
        wait_ready(listening(1), what="the probe server", proc=proc, log=log, timeout=30)
    assert "the probe server exited with 3" in str(info.value)
    assert "bind: address in use" in str(info.value)


def test_a_server_that_never_gets_ready_fails_the_test_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("starting...\nwaiting for the disk\n")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(pytest.fail.Exception) as info:
            wait_ready(lambda: False, what="the slow server", proc=proc, log=log, timeout=0.3)
    finally:
        proc.kill()
        proc.wait()
    assert "the slow server was not ready within 0.3s" in str(info.value)
    assert "waiting for the disk" in log_tail(log)
    assert "waiting for the disk" in str(info.value)
