"""Engine failures users hit, on the real engines in a separate process: one line with
the cause and a hint, exit 1, no traceback (a held lock; files drkit may not write)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.registry import open_vector_store

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
HOLD = "import sys, time\nfrom drkit.connectors.vectorstore.registry import open_vector_store\n"
HOLD += "s = open_vector_store(sys.argv[1]); print('held', flush=True); time.sleep(60)\n"
WRITE = """import sys
from drkit.cli.main import main
from drkit.connectors.vectorstore.base import make_batch
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.errors import DrkitError
try:
    s = open_vector_store(sys.argv[1])
    cfg = s.describe("docs")
    s.import_batches("docs", [make_batch(cfg, ["b"], {"": [[1.0, 2.0, 3.0, 4.0]]}, [{}])])
except DrkitError as exc:
    print(type(exc).__name__, exc, "| Try:", exc.hint)
    sys.exit(exc.exit_code)
"""


def drkit(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    cmd = [*prefix, sys.executable, "-m", "drkit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)


@pytest.mark.parametrize("engine", ["qdrant+local", "milvus-lite"])
def test_a_path_held_by_another_process(tmp_path: Path, engine: str) -> None:
    url = f"{engine}://{tmp_path / 'db.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        res = drkit("snapshot", "leftovers", url)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2, res.stderr  # the error and its hint
    assert "is held by another process" in lines[0]
    assert lines[1].startswith("Try: stop the process that holds it")


def _read_only(root: Path) -> tuple[str, ...]:
    """Make ``root`` unwritable for a child process: as root, files owned by nobody and
    the capabilities that bypass permissions dropped; else the write bits removed."""
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root's bypass"
        subprocess.run(["chown", "-R", "nobody", str(root)], check=True)
        subprocess.run(["chmod", "-R", "go-w,a+rX", str(root)], check=True)
        caps = "-dac_override,-dac_read_search,-fowner,-chown"
        return ("setpriv", f"--bounding-set={caps}")
    subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
    return ()


@pytest.mark.parametrize("engine", ["chroma", "lancedb", "qdrant+local", "milvus-lite"])
def test_files_drkit_may_not_write(tmp_path: Path, engine: str) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    url = f"{engine}://{root / 'db.db'}"
    with open_vector_store(url) as store:
        cfg = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.L2),))
        store.create(cfg)
        store.import_batches("docs", [make_batch(cfg, ["a"], {"": [[1.0, 0, 0, 0]]}, [{}])])
    time.sleep(0.2)
    prefix = _read_only(root)
    try:
        cmd = [*prefix, sys.executable, "-c", WRITE, url]
        res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "root", str(root)], check=False)
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert res.stdout.startswith("EnginePermissionDenied "), res.stdout
    assert "permission denied" in res.stdout
    assert "| Try: give the user drkit runs as write access" in res.stdout
