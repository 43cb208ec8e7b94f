"""Odd input for file-tree backup and restore (issue 9 item 12): names that are not
UTF-8, FIFOs and other special files, restore targets that cannot be written, and the
mode of the restored top directory."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.repository.conftest import tree_state

from drkit.cli.main import main
from drkit.errors import InputError
from drkit.repository import Repository, backup_path, restore

_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def _bytes_state(root: Path) -> dict[bytes, tuple[object, ...]]:
    """tree_state keyed by raw bytes names (FIFOs included)."""
    out: dict[bytes, tuple[object, ...]] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, broot)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


def test_non_utf8_names_round_trip_exactly(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    bsrc = os.fsencode(src)
    for raw in (b"caf\xe9.txt", b"caf\xe8.txt", b"\xff\xfe", b"ok.txt"):
        with open(os.path.join(bsrc, raw), "wb") as f:
            f.write(raw * 3)
    os.mkdir(os.path.join(bsrc, b"dir-\x80"))
    with open(os.path.join(bsrc, b"dir-\x80", b"inner\x81"), "wb") as f:
        f.write(b"inner")
    os.symlink(b"target-\xfa", os.path.join(bsrc, b"link\xfb"))
    snap = backup_path(repo, src, component="c")
    assert snap.summary["files"] == 5
    out = tmp_path / "out"
    restore(repo, snap, out)
    assert _bytes_state(out) == _bytes_state(src)
    # unchanged files are recognised again on the next backup
    again = backup_path(repo, src, component="c")
    assert again.summary["reused_files"] == 5


def test_fifos_are_restored_as_fifos_and_specials_are_counted(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("data")
    os.mkfifo(src / "sub" / "pipe", 0o640)
    sock = socket.socket(socket.AF_UNIX)
    with contextlib.closing(sock):
        sock.bind(str(src / "sock"))
        snap = backup_path(repo, src, component="c")
    assert snap.summary["fifos"] == 1
    assert snap.summary["skipped"] == 1
    assert snap.summary["skipped_paths"] == [str(src / "sock")]
    (src / "sock").unlink()
    out = tmp_path / "out"
    res = restore(repo, snap, out)
    assert res.fifos == 1
    assert stat.S_ISFIFO((out / "sub" / "pipe").lstat().st_mode)
    assert _bytes_state(out) == _bytes_state(src)


def test_a_fifo_as_path_is_refused(repo: Repository, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        backup_path(repo, tmp_path / "pipe", component="c")
    assert repo.snapshots() == []


def test_the_top_directory_gets_the_sources_mode(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    os.chmod(src, 0o751)
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    snap = backup_path(repo, src, component="c")
    restore(repo, snap, tmp_path / "out")
    st = (tmp_path / "out").stat()
    assert stat.S_IMODE(st.st_mode) == 0o751
    assert st.st_mtime_ns == 1_600_000_000_000_000_000
    assert tree_state(tmp_path / "out") == tree_state(src)


@contextlib.contextmanager
def _unwritable(d: Path) -> Iterator[None]:
    """A directory nobody can create files in: immutable (root ignores modes), else 0555."""
    d.mkdir()
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    immutable = False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, array.array("i", [flags[0] | _FS_IMMUTABLE_FL]), True)
        immutable = True
    except OSError:
        assert os.geteuid() != 0, "root needs an immutable directory for this test"
        os.chmod(d, 0o555)
    try:
        yield
    finally:
        if immutable:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, array.array("i", [0]), True)
        os.close(fd)
        os.chmod(d, 0o755)


def test_restore_targets_that_cannot_be_written(
    repo: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    snap = backup_path(repo, src, component="c")
    with _unwritable(tmp_path / "ro"):
        with pytest.raises(InputError, match="cannot restore into"):
            restore(repo, snap, tmp_path / "ro" / "out")
        assert list((tmp_path / "ro").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a directory"):
        restore(repo, snap, tmp_path / "file" / "deeper" / "out")
    # the CLI: exit 2 with the hint, no traceback
    monkeypatch.setenv("DRKIT_PASSWORD", "correct horse battery staple")
    capsys.readouterr()
    url = repo.store.url
    assert main(["restore", snap.id, "--to", str(tmp_path / "file" / "out"), "--repo", url]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err
    assert "Traceback" not in err
