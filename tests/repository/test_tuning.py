"""The machine-specific tuning (drkit.repository.tuning): on by default, all off with
``DRKIT_NO_TUNING=1``, and each part a no-op where it does not apply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drkit.repository import tuning

PROBE = "from drkit.repository.tuning import tune_allocator; print(tune_allocator())"


def _allocator_tuned(env_off: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != tuning.ENV_OFF}
    if env_off is not None:
        env[tuning.ENV_OFF] = env_off
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_the_allocator_is_tuned_unless_turned_off() -> None:
    """In a fresh process (the setting is per process): glibc accepts the thresholds;
    ``DRKIT_NO_TUNING=1`` (or true/yes) leaves the allocator alone."""
    assert _allocator_tuned(None) == "True"
    assert _allocator_tuned("1") == "False"
    assert _allocator_tuned("yes") == "False"


def test_drop_cache_advises_the_kernel_unless_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = tmp_path / "pack"
    pack.write_bytes(b"x" * 4096)
    calls: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def recording(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recording)
    tuning.drop_cache(pack)
    assert calls == [(0, 0, os.POSIX_FADV_DONTNEED)]
    tuning.drop_cache(tmp_path / "missing")  # best effort: nothing to advise, no error
    tuning.drop_cache(None)
    assert len(calls) == 1
    monkeypatch.setenv(tuning.ENV_OFF, "1")
    assert not tuning.enabled()
    tuning.drop_cache(pack)
    assert len(calls) == 1  # turned off: not called
    assert pack.read_bytes() == b"x" * 4096  # speed only: the file is what it was


def test_set_topdir_is_not_tried_when_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    calls: list[Any] = []
    real = fcntl.ioctl

    def recording(fd: int, request: int, *args: Any) -> Any:
        calls.append(request)
        return real(fd, request, *args)

    monkeypatch.setattr(fcntl, "ioctl", recording)
    monkeypatch.setenv(tuning.ENV_OFF, "1")
    assert tuning.set_topdir(tmp_path, True) is False
    assert calls == []
    monkeypatch.delenv(tuning.ENV_OFF)
    tuning.set_topdir(tmp_path, True)  # ext4 sets it; other file systems refuse (False)
    if sys.platform.startswith("linux"):
        assert calls  # it was tried
    tuning.set_topdir(tmp_path, False)  # clearing is always allowed, even when turned off
    assert tmp_path.is_dir()
