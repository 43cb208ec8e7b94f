"""Blob framing: compression mode byte, zstd, byte shuffle, hashing and verification.

A blob's id is the unkeyed BLAKE3 of its plaintext. Its stored form is the encryption of
``mode | payload`` (mode 0 raw, 1 zstd, 2 byte-shuffle-4 + zstd); see
``docs/repository-format.md`` section 3.
"""

from __future__ import annotations

import threading
from enum import IntEnum

import blake3
import numpy as np
import zstandard

from drkit.repository.crypto import Cipher

MODE_RAW = 0
MODE_ZSTD = 1
MODE_SHUFFLE_ZSTD = 2
ZSTD_LEVEL = 1
#: Compression must save at least this fraction of a blob to be kept.
MIN_SAVING = 0.02
SAMPLE = 64 * 1024


class BlobType(IntEnum):
    DATA = 0
    TREE = 1


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def blob_id(data: bytes | memoryview) -> bytes:
    """The 32-byte id of a blob: BLAKE3 of its plaintext."""
    return blake3.blake3(data).digest()


def _shuffle(data: bytes | memoryview) -> bytes:
    n = len(data) // 4 * 4
    arr = np.frombuffer(data, dtype=np.uint8, count=n)
    return arr.reshape(-1, 4).T.tobytes() + bytes(data[n:])


def _unshuffle(data: bytes, size: int) -> bytes:
    n = size // 4 * 4
    arr = np.frombuffer(data, dtype=np.uint8, count=n)
    return arr.reshape(4, -1).T.tobytes() + data[n:]


def choose_mode(sample: bytes | memoryview) -> int:
    """Pick the compression mode for a file from a sample of its bytes."""
    if len(sample) < 64:
        return MODE_RAW
    sample = sample[:SAMPLE]
    plain = len(_compressor().compress(sample))
    shuffled = len(_compressor().compress(_shuffle(sample)))
    best = min(plain, shuffled)
    if best > len(sample) * (1 - MIN_SAVING):
        return MODE_RAW
    return MODE_SHUFFLE_ZSTD if shuffled < plain * 0.97 else MODE_ZSTD


def encode(data: bytes | memoryview, mode: int, cipher: Cipher) -> bytes:
    """Compress (when it pays) and encrypt a blob's plaintext."""
    if mode != MODE_RAW and len(data) >= 64:
        packed = _compressor().compress(_shuffle(data) if mode == MODE_SHUFFLE_ZSTD else data)
        if len(packed) <= len(data) * (1 - MIN_SAVING):
            return cipher.encrypt(bytes((mode,)) + packed)
    return cipher.encrypt(b"\x00" + bytes(data))


def decode(stored: bytes | memoryview, raw_length: int, cipher: Cipher) -> bytes:
    """Decrypt and decompress; raises DecryptError or ValueError on damage (no hash check)."""
    framed = cipher.decrypt(stored)
    mode, payload = framed[0], framed[1:]
    if mode == MODE_RAW:
        return payload
    try:
        out = _decompressor().decompress(payload, max_output_size=raw_length)
    except zstandard.ZstdError as exc:
        raise ValueError(f"zstd: {exc}") from exc
    if mode == MODE_SHUFFLE_ZSTD:
        return _unshuffle(out, raw_length)
    if mode == MODE_ZSTD:
        return out
    raise ValueError(f"unknown compression mode {mode}")
