"""Machine-specific tuning, all in one place; ``DRKIT_NO_TUNING=1`` turns every part off.

Each part is best effort (it does nothing where the platform lacks it) and changes
speed only, never what is stored or restored. They exist because on the VMs we measured
fresh memory is expensive (the hypervisor backs guest pages lazily: ~10 us per new 4 KiB
page), see docs/repository-format.md section 13 for the figures.

1. :func:`tune_allocator`: keep large buffers in the heap instead of fresh ``mmap``
   regions. glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB at first) with a new
``mmap`` each time and unmaps them on free, so every 1 MiB chunk, compressed blob and
16 MiB pack costs hundreds of page faults. On the VMs we measured, that made a plain
``bytes`` copy of 1 MiB run at ~0.9 GB/s instead of ~20 GB/s, and it dominated backup and
restore time. Raising the thresholds once per process fixes it; elsewhere (musl, macOS)
this does nothing.
2. :func:`drop_cache`: ``posix_fadvise(DONTNEED)`` on a pack just written (and
   fsynced) to a local disk, so the next pack's write reuses its pages.
3. :func:`set_topdir`: ext4's ``chattr +T`` on a restore's temporary root, so the
   restored directories avoid block groups with recently freed inodes.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import fcntl
import os
import sys
from pathlib import Path

#: Set to ``1`` to disable every tuning below (to rule it out when measuring or
#: debugging, or on a platform where one of them misbehaves).
ENV_OFF = "DRKIT_NO_TUNING"


def enabled() -> bool:
    return os.environ.get(ENV_OFF, "") not in ("1", "true", "yes")


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds (idempotent); True when applied."""
    global _done
    if _done or not sys.platform.startswith("linux") or not enabled():
        return _done
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, 64 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 512 << 20))
    return ok


def drop_cache(path: str | os.PathLike[str] | None) -> None:
    """Tell the kernel a file just written and fsynced will not be read soon.

    Its pages are clean, so they are freed at once and the next pack's write reuses
    them. On the development VM, writing into never-touched pages costs ~10 us per 4 KiB
    (fsync'd 16 MiB writes: 263-294 MiB/s and 1.8-2.0 s of system time per 768 MiB,
    against 930-1,046 MiB/s and 0.3 s with this)."""
    if path is None or not hasattr(os, "posix_fadvise") or not enabled():
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def set_topdir(path: Path, on: bool) -> bool:
    """Set or clear ext2/3/4's "top of directory hierarchy" flag (``chattr +T``) on the
    restore root; True when it was changed. With it, the allocator spreads the restored
    subdirectories over the block groups instead of packing them into the parent's group.
    That group is where recent deletions are: ext4 without a journal (this VM's disk)
    skips inodes freed in the last 30 s one by one, which made creating 3,000 files take
    up to 1.8 s instead of ~0.1 s. Other file systems refuse the ioctl."""
    if not sys.platform.startswith("linux") or (on and not enabled()):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        new = flags[0] | _FS_TOPDIR_FL if on else flags[0] & ~_FS_TOPDIR_FL
        if new == flags[0]:
            return False
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, array.array("i", [new]), True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
