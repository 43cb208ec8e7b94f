"""The README's tour runs as written: its shell and Python blocks, in order, in an empty
directory with a fresh HOME and no DRKIT_* variables of the caller (the blocks set what
they need), servers started with ``&`` killed at the end, under a time limit."""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SRC = Path(__file__).resolve().parents[1] / "src"
TOUR = "## A short tour"
#: the fixed ports the tour's simulators and gateway listen on
PORTS = (9101, 9102, 9201, 9202, 8787)
PY_END = "DRKIT_README_PY"


def tour_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of the fenced sh/python blocks of the tour section, in order."""
    start = text.index(TOUR)
    end = text.find("\n## ", start + len(TOUR))
    section = text[start : end if end != -1 else len(text)]
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^```(sh|python)\n(.*?)^```$", section, re.M | re.S)
    ]


def tour_script(blocks: list[tuple[str, str]]) -> str:
    """One bash script: sh blocks as they are, Python blocks through ``python -``; a
    trap kills whatever the blocks left running in the background."""
    lines = [
        "set -euo pipefail",
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
    ]
    for lang, code in blocks:
        lines.append(f'echo ">>> {lang} block at $(date +%s.%N)"')
        if lang == "sh":
            lines.append(code)
        else:
            assert PY_END not in code
            lines += [f"python - <<'{PY_END}'", code.rstrip("\n"), PY_END]
    return "\n".join(lines) + "\n"


def _bin_dir(tmp: Path) -> Path:
    """``drkit`` and ``python`` as this interpreter, with this checkout's sources."""
    bindir = tmp / "bin"
    bindir.mkdir()
    py = shlex.quote(sys.executable)
    for name, cmd in (("drkit", f"{py} -m drkit"), ("python", py)):
        path = bindir / name
        path.write_text(f'#!/bin/sh\nexec {cmd} "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bindir


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_tour_blocks_are_found() -> None:
    blocks = tour_blocks(README.read_text())
    langs = [lang for lang, _ in blocks]
    assert "python" in langs
    assert langs.count("sh") >= 4
    code = "\n".join(c for _, c in blocks)
    for step in ("drkit init --local", "drkit backup", "drkit verify", "drkit gateway serve"):
        assert step in code
    assert "/srv/" not in code  # nothing that needs root


def test_readme_tour_runs_verbatim(tmp_path: Path) -> None:
    busy = [p for p in PORTS if not _port_free(p)]
    assert not busy, f"the README tour needs ports {busy} free on 127.0.0.1"
    script = tour_script(tour_blocks(README.read_text()))
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRKIT_")}
    env.update(
        HOME=str(home),
        PATH=f"{_bin_dir(tmp_path)}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        COLUMNS="200",
        DRKIT_KDF="fast",  # the suite's cheap key stretching (the tour's commands, unchanged)
    )
    env.pop("XDG_STATE_HOME", None)
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the README tour did not finish in {exc.timeout}s:\n{exc.stdout!r}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the README tour failed (exit {proc.returncode}):\n{out[-6000:]}"
    # what the tour claims to show, it shows
    assert "passes the framework check" in out
    assert "restore test passed" in out
    assert "x-drkit-target: sim-us" in out  # the failover to the other region
    assert re.search(r"\b(\d+) of \1 drills passed", out)  # every drill the plan can run
    assert (work / "tour" / "restored").is_dir()
    assert (work / "tour" / "backups" / "us-east").is_dir()
