"""A process-wide memory setting the console script makes before any thread starts.

glibc's malloc gives each thread that meets contention an arena of its own, up to 8 per
core; a snapshot or a restore runs Lance's, Arrow's and the repository's worker threads
side by side, and each arena keeps the memory its thread freed. Over a 1M x 768 LanceDB
snapshot on 2 cores that retention was ~270 MiB of a 980 MiB peak; at 2 arenas per core
the peak was 705 MiB, as fast (``benchmarks/scale.py``, docs/vector-stores.md).
"""

from __future__ import annotations

import ctypes
import os

#: ``mallopt``'s parameter for the arena cap (glibc's malloc.h)
M_ARENA_MAX = -8
ARENAS_PER_CORE = 2


def bound_malloc_arenas() -> int | None:
    """Cap glibc's malloc arenas at :data:`ARENAS_PER_CORE` per core (at least 2),
    unless ``MALLOC_ARENA_MAX`` is set (glibc then reads it itself). Returns the cap, or
    None where it was left alone (another C library, the user's own setting). Call it
    before threads start: arenas already made stay."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only (musl's mallopt is a no-op)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    cap = max(2, ARENAS_PER_CORE * (os.cpu_count() or 1))
    return cap if mallopt(M_ARENA_MAX, cap) == 1 else None
