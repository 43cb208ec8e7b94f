"""A directory on this machine's disk as an object store.

Each key is a file under ``root`` (``data/ab/abc`` -> ``ROOT/data/ab/abc``). Writes are
atomic and durable: the data goes to a temporary file in the target directory, is
fsynced, then renamed (``put``) or hard-linked (``put(if_absent=True)``, which fails
atomically when the key exists) into place, and the directory is fsynced so that the
new name survives a power cut. Readers never see a partial object; a crash leaves at
most a ``.drkit-tmp-*`` file, which ``list`` skips.

Files are created ``0600`` and directories ``0700`` (restic does the same): a repository
is nobody else's business. A key cannot be both an object and a "directory" of other
keys here (``a`` and ``a/b``), unlike on S3; drkit's layouts never need that.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat as stat_mod
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from drkit.connectors.objectstore.base import Capabilities, ObjectInfo, ObjectStore
from drkit.connectors.objectstore.keys import TEMP_PREFIX, check_key, check_prefix, check_range
from drkit.errors import (
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StoragePermissionDenied,
    UsageError,
)

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class LocalStore(ObjectStore):
    """Objects as files under ``root``; ``fsync=False`` trades durability for speed."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = self.root.as_uri()
        self.capabilities = Capabilities(atomic_create=True, max_concurrency=4, local=True)
        self._fsync = fsync

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        """``file:///abs/path`` (or ``file://localhost/abs/path``) or a plain path."""
        if "://" not in url:
            return cls(url)
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise UsageError(f"not a file URL: {url!r}", hint="use file:///absolute/path")
        if parts.netloc not in ("", "localhost"):
            raise UsageError(
                f"file URL with a host: {url!r}",
                hint="use file:///absolute/path (three slashes) or a plain path",
            )
        if parts.query or parts.fragment:
            raise UsageError(f"file URLs take no options: {url!r}", hint="drop the '?...'")
        if not parts.path:
            raise UsageError(f"file URL without a path: {url!r}", hint="use file:///absolute/path")
        return cls(unquote(parts.path))

    # --- writes ------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        path = self._path(key)
        try:
            tmp = self._write_temp(path.parent, data)
            try:
                if if_absent:
                    self._link_into_place(tmp, path, key)
                    _unlink_quiet(tmp)
                else:
                    os.replace(tmp, path)
            except BaseException:
                _unlink_quiet(tmp)
                raise
            if self._fsync:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise self._translate(exc, f"writing {key}") from exc

    def _link_into_place(self, tmp: Path, path: Path, key: str) -> None:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ObjectExists(f"{key} already exists in {self.url}") from None
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            # A file system without hard links: best effort (checked, then renamed).
            if path.exists():
                raise ObjectExists(f"{key} already exists in {self.url}") from None
            os.rename(tmp, path)

    def _write_temp(self, directory: Path, data: bytes) -> Path:
        tmp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, _FILE_MODE)
        except FileNotFoundError:
            self._makedirs(directory)
            fd = os.open(tmp, flags, _FILE_MODE)
        try:
            view = memoryview(data).cast("B")
            written, size = 0, len(view)
            while written < size:
                written += os.write(fd, view[written:])
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quiet(tmp)
            raise
        os.close(fd)
        return tmp

    def _makedirs(self, directory: Path) -> None:
        missing: list[Path] = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                os.mkdir(path, _DIR_MODE)
            except FileExistsError:
                continue
            if self._fsync:
                _fsync_dir(path.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise self._translate(exc, f"deleting {key}") from exc

    # --- reads -------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb", buffering=0) as f:
                return f.readall()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._translate(exc, f"reading {key}") from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._translate(exc, f"reading {key}") from exc
        try:
            first = os.pread(fd, length, offset)
            if len(first) == length or not first:
                return first
            parts = [first]  # a short read before the end (huge ranges): keep reading
            got = len(first)
            while got < length:
                chunk = os.pread(fd, length - got, offset + got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            return b"".join(parts)
        except IsADirectoryError:
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._translate(exc, f"reading {key}") from exc
        finally:
            os.close(fd)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._translate(exc, f"stat of {key}") from exc
        if not stat_mod.S_ISREG(st.st_mode):
            raise self._not_found(key)
        return ObjectInfo(key, st.st_size)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        head, _, partial = prefix.rpartition("/")
        start = self.root / head if head else self.root
        stack = [(str(start), f"{head}/" if head else "", partial)]
        try:
            while stack:
                directory, base, part = stack.pop()
                try:
                    entries = os.scandir(directory)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                with entries:
                    for entry in entries:
                        name = entry.name
                        if (part and not name.startswith(part)) or name.startswith(TEMP_PREFIX):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((entry.path, f"{base}{name}/", ""))
                        elif entry.is_file():
                            try:
                                size = entry.stat().st_size
                            except FileNotFoundError:  # deleted while we list
                                continue
                            yield ObjectInfo(base + name, size)
        except OSError as exc:
            raise self._translate(exc, f"listing {prefix or '/'}") from exc

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def leftovers(self, older_than: float = 0.0) -> Iterator[ObjectInfo]:
        cutoff = time.time() - older_than
        for directory, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                try:
                    st = path.stat()
                except FileNotFoundError:  # its write finished meanwhile
                    continue
                if st.st_mtime <= cutoff:
                    yield ObjectInfo(path.relative_to(self.root).as_posix(), st.st_size)

    def remove_leftover(self, key: str) -> None:
        head, _, name = key.rpartition("/")
        if not name.startswith(TEMP_PREFIX) or (head and check_key(head) != head):
            raise UsageError(f"not a temporary file of this store: {key!r}")
        _unlink_quiet(self.root / key)

    # --- helpers -----------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _not_found(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"{key} not found in {self.url}")

    def _translate(self, exc: OSError, what: str) -> StorageError:
        reason = exc.strerror or str(exc)
        message = f"{what} in {self.url}: {reason}"
        if exc.errno in _FULL:
            return StorageFull(message)
        if exc.errno in _DENIED:
            return StoragePermissionDenied(message)
        if exc.errno == errno.ENOTDIR:
            return StorageError(
                message, hint="a key cannot both be an object and hold other keys on a disk"
            )
        return StorageError(message)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quiet(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
