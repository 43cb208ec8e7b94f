"""The batched record hasher of ``native/records.c``, loaded with ctypes when the
install could compile it (``hatch_build.py``; ``DRKIT_NATIVE=0`` turns it off).

One call hashes a batch: BLAKE3's SIMD lanes take the full chunks of 64 records side by
side, where one hasher per ~3 KiB record filled 3-4 of them, and ctypes releases the
GIL for the call. Same digests as blake3-py (tests/connectors/vectorstore/test_native.py)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

LIBRARY = Path(__file__).parent / "_native" / "libdrkit_records.so"


def _load() -> Any:
    if os.environ.get("DRKIT_NATIVE", "1") == "0" or not LIBRARY.exists():
        return None
    try:
        lib = ctypes.CDLL(str(LIBRARY))
    except OSError:  # built for another machine: the blake3-py path still works
        return None
    fn = lib.drkit_hash_records
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    fn.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    fn.argtypes += [ctypes.c_void_p, ctypes.c_size_t]
    return fn


_HASH = _load()


def available() -> bool:
    return _HASH is not None


def hash_records(
    meta: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    vectors: list[tuple[np.ndarray[Any, Any], int]],
    size: int,
) -> np.ndarray[Any, Any]:
    """The first ``size`` bytes of BLAKE3 of each record, one row each: record ``i`` is
    ``meta[starts[i]:starts[i+1]]`` then row ``i`` of each ``(flat bytes, bytes per row)``
    in ``vectors``."""
    assert _HASH is not None
    assert 0 < size <= 32
    n = len(starts) - 1
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    meta = np.ascontiguousarray(meta, dtype=np.uint8)
    ptrs = (ctypes.c_void_p * max(1, len(vectors)))(*(v.ctypes.data for v, _ in vectors))
    sizes = (ctypes.c_size_t * max(1, len(vectors)))(*(s for _, s in vectors))
    out = np.empty((n, size), dtype=np.uint8)
    if (
        _HASH(
            meta.ctypes.data,
            starts.ctypes.data,
            0,
            n,
            ptrs,
            sizes,
            len(vectors),
            out.ctypes.data,
            size,
        )
        != 0
    ):
        raise MemoryError("the record hasher could not allocate its buffers")
    return out
