"""Blob framing: compression mode byte, zstd, byte shuffle, hashing and verification.

A blob's id is the unkeyed BLAKE3 of its plaintext. Its stored form is the encryption of
``mode | payload`` (mode 0 raw, 1 zstd, 2 float32 split: zstd of the high byte planes,
low planes raw); see ``docs/repository-format.md`` section 3.
"""

from __future__ import annotations

import struct
import threading
from enum import IntEnum
from typing import Any

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
_SPLIT = struct.Struct("<I")


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


def _planes(data: bytes | memoryview) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Byte planes of 4-byte words: row k holds byte k of every word."""
    words = np.frombuffer(data, dtype=np.uint32, count=len(data) // 4)
    out = np.empty((4, len(words)), dtype=np.uint8)
    for k in range(4):
        np.right_shift(words, 8 * k, out=out[k], casting="unsafe")
    return out


def _shuffle(data: bytes | memoryview) -> bytes:
    """float32 split: zstd of the two high byte planes (sign, exponent, top mantissa
    bits), then the two low planes raw (mantissa noise does not compress)."""
    n = len(data) // 4 * 4
    planes = _planes(data)
    high = _compressor().compress(planes[2:].tobytes())
    return _SPLIT.pack(len(high)) + high + planes[:2].tobytes() + bytes(data[n:])


def _unshuffle(payload: bytes, size: int) -> bytes:
    words = size // 4
    (hlen,) = _SPLIT.unpack_from(payload)
    high = _decompressor().decompress(payload[4 : 4 + hlen], max_output_size=2 * words)
    low = payload[4 + hlen : 4 + hlen + 2 * words]
    if len(high) != 2 * words or len(low) != 2 * words:
        raise ValueError("float32 split payload has the wrong size")
    out = np.empty((words, 4), dtype=np.uint8)
    out[:, 0] = np.frombuffer(low, np.uint8, words)
    out[:, 1] = np.frombuffer(low, np.uint8, words, words)
    out[:, 2] = np.frombuffer(high, np.uint8, words)
    out[:, 3] = np.frombuffer(high, np.uint8, words, words)
    return out.tobytes() + payload[4 + hlen + 2 * words :]


def choose_mode(sample: bytes | memoryview) -> int:
    """Pick the compression mode for a file from a sample of its bytes."""
    if len(sample) < 64:
        return MODE_RAW
    sample = sample[:SAMPLE]
    plain = len(_compressor().compress(sample))
    shuffled = len(_shuffle(sample))
    best = min(plain, shuffled)
    if best > len(sample) * (1 - MIN_SAVING):
        return MODE_RAW
    return MODE_SHUFFLE_ZSTD if shuffled < plain * 0.97 else MODE_ZSTD


def encode(data: bytes | memoryview, mode: int, cipher: Cipher) -> bytes:
    """Compress (when it pays) and encrypt a blob's plaintext."""
    if mode != MODE_RAW and len(data) >= 64:
        packed = _shuffle(data) if mode == MODE_SHUFFLE_ZSTD else _compressor().compress(data)
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
        if mode == MODE_SHUFFLE_ZSTD:
            return _unshuffle(payload, raw_length)
        if mode == MODE_ZSTD:
            out: bytes = _decompressor().decompress(payload, max_output_size=raw_length)
            return out
    except (zstandard.ZstdError, struct.error) as exc:
        raise ValueError(f"decompression failed: {exc}") from exc
    raise ValueError(f"unknown compression mode {mode}")
