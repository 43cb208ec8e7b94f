"""LocalStore specifics: durability mechanics, file modes, and real OS errors.

A full disk is a real ENOSPC on a 1 MiB tmpfs (when this process may mount, i.e. as
root) and a real EFBIG from a file-size limit (any user); permission errors come from a
process running as ``nobody`` (as root) or from a read-only directory (other users).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drkit.connectors.objectstore.local import LocalStore
from drkit.errors import (
    ObjectExists,
    StorageError,
    StorageFull,
    StoragePermissionDenied,
    UsageError,
)

ROOT = Path(__file__).resolve().parents[3]


def test_layout_and_modes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "repo")
    store.put("data/ab/abcdef", b"content")
    path = tmp_path / "repo" / "data" / "ab" / "abcdef"
    assert path.read_bytes() == b"content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["abcdef"]  # no temp left


def test_temp_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("data/x", b"1")
    (tmp_path / "data" / ".drkit-tmp-0123").write_bytes(b"a crashed write")
    assert [i.key for i in store.list()] == ["data/x"]


def test_if_absent_keeps_existing_and_cleans_temp(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"first", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put("k", b"second", if_absent=True)
    assert store.get("k") == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_without_fsync_same_results(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, fsync=False)
    store.put("a/b", b"x" * 10)
    assert store.get("a/b") == b"x" * 10


def test_key_that_is_a_directory_on_disk(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a", b"file")
    with pytest.raises(StorageError, match="Not a directory") as info:
        store.put("a/b", b"under a file")
    assert info.value.hint is not None
    assert "cannot both be an object" in info.value.hint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/backups", "/srv/backups"),
        ("file://localhost/srv/backups", "/srv/backups"),
        ("file:///srv/with%20space", "/srv/with space"),
        ("/srv/plain", "/srv/plain"),
    ],
)
def test_from_url(url: str, expected: str) -> None:
    assert LocalStore.from_url(url).root == Path(expected)


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStore.from_url("repo")
    assert store.root == tmp_path / "repo"
    assert store.url == (tmp_path / "repo").as_uri()


@pytest.mark.parametrize("url", ["file://host/srv", "file:///srv?x=1", "file://"])
def test_bad_file_urls(url: str) -> None:
    with pytest.raises(UsageError):
        LocalStore.from_url(url)


# --- real OS errors ----------------------------------------------------------------------


def _run_child(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_file_size_limit_is_storage_full(tmp_path: Path) -> None:
    """A real EFBIG (RLIMIT_FSIZE) becomes StorageFull; the old object survives intact."""
    store = LocalStore(tmp_path)
    store.put("obj", b"old content")
    result = _run_child(
        f"""
        import resource, signal
        from drkit.connectors.objectstore.local import LocalStore
        from drkit.errors import StorageFull
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        store = LocalStore({str(tmp_path)!r})
        try:
            store.put("obj", b"x" * 100_000)
        except StorageFull as exc:
            print("StorageFull:", exc, "| hint:", exc.hint)
        """
    )
    assert "StorageFull:" in result.stdout, result.stdout + result.stderr
    assert "Try" not in result.stdout
    assert "free space" in result.stdout
    assert store.get("obj") == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["obj"]  # the temp file was removed


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_enospc_on_a_full_tmpfs(tiny_tmpfs: Path) -> None:
    store = LocalStore(tiny_tmpfs / "repo")
    store.put("keep", b"k" * 1000)
    with pytest.raises(StorageFull) as info:
        store.put("big", os.urandom(2 * 1024 * 1024))
    assert "No space left" in str(info.value)
    assert store.get("keep") == b"k" * 1000
    assert not store.exists("big")
    assert sorted(p.name for p in (tiny_tmpfs / "repo").iterdir()) == ["keep"]
    store.put("small", b"still fine")  # the failed write left no space behind


def _as_nobody(action: Callable[[], None]) -> str:
    """Run ``action`` in a forked child with uid/gid 65534; return what it reports."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about fork with threads; the child
        warnings.simplefilter("ignore", DeprecationWarning)  # only makes syscalls
        pid = os.fork()
    if pid == 0:  # child: no exec needed, so no access to the interpreter is required
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            action()
            report = "no error"
        except BaseException as exc:
            report = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, report.encode())
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    os.waitpid(pid, 0)
    return report


def test_permission_denied(tmp_path: Path) -> None:
    target = tmp_path / "locked"
    target.mkdir()
    (target / "obj").write_bytes(b"secret data")
    os.chmod(target / "obj", 0o600)
    os.chmod(target, 0o755)
    os.chmod(tmp_path, 0o755)
    store = LocalStore(target)
    if os.geteuid() != 0:
        os.chmod(target, 0o555)
        with pytest.raises(StoragePermissionDenied):
            store.put("new", b"x")
        return
    # root ignores modes: act as nobody in a forked child.
    assert _as_nobody(lambda: store.put("new", b"x")).startswith("StoragePermissionDenied:")
    assert _as_nobody(lambda: store.get("obj")).startswith("StoragePermissionDenied:")
    assert not store.exists("new")
