"""The console script caps glibc's malloc arenas before any thread starts (each thread
otherwise gets an arena of its own, up to 8 per core, each keeping what it freed)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# more threads than the cap each allocate and hold memory while the others do, then
# malloc_info (XML, one <heap nr=...> per arena) is written to a file
PROBE = r"""
import ctypes, sys, threading
if sys.argv[1] == "cap":
    from drkit.cli.memory import bound_malloc_arenas
    print(bound_malloc_arenas())
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
n = int(sys.argv[3])
barrier = threading.Barrier(n)
def work():
    barrier.wait()
    held = [libc.malloc(4096) for _ in range(64)]
    barrier.wait()
ts = [threading.Thread(target=work) for _ in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
f = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(f)); libc.fclose(ctypes.c_void_p(f))
"""


CAP = max(2, 2 * (os.cpu_count() or 1))


def _arenas(tmp_path: Path, mode: str) -> tuple[str, int]:
    out = tmp_path / f"{mode}.xml"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(out), str(CAP + 8)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip(), out.read_text().count("<heap nr=")


def test_the_cap_bounds_the_arenas_threads_get(tmp_path: Path) -> None:
    said, capped = _arenas(tmp_path, "cap")
    assert said == str(CAP)
    assert 1 <= capped <= CAP
    _, free = _arenas(tmp_path, "free")
    assert free > capped  # without it, the threads made arenas of their own


def test_the_users_own_setting_is_left_to_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    from drkit.cli.memory import bound_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    assert bound_malloc_arenas() is None
