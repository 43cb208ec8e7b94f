"""Blob framing: every mode round-trips at every size and phase; float32 split pays."""

from __future__ import annotations

import os

import numpy as np
import pytest

from drkit.repository import codec
from drkit.repository.crypto import Cipher, DecryptError

CIPHER = Cipher(os.urandom(32))


def _floats(n: int, seed: int = 0) -> bytes:
    a = np.random.default_rng(seed).standard_normal((n // 3072 + 1, 768)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a.tobytes()[:n]


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 63, 64, 65, 67, 4096, 100_001])
@pytest.mark.parametrize("mode", [codec.MODE_RAW, codec.MODE_ZSTD, codec.MODE_SHUFFLE_ZSTD])
def test_round_trip(size: int, mode: int) -> None:
    for data in (_floats(size + 3)[3:], os.urandom(size), b"a" * size):
        stored = codec.encode(data, mode, CIPHER)
        assert codec.decode(stored, len(data), CIPHER) == data


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 3000, 65536])
def test_auto_mode_round_trips_and_picks_per_blob(size: int) -> None:
    text = (b'{"id": 1, "text": "w12 w7 w4410 w12"}' * (size // 36 + 1))[:size]
    cases = [
        (_floats(size + 1)[1:], codec.MODE_SHUFFLE_ZSTD),
        (os.urandom(size), codec.MODE_RAW),
        (text, codec.MODE_ZSTD),
    ]
    for data, expected in cases:
        stored = codec.encode(data, codec.MODE_AUTO, CIPHER)
        assert codec.decode(stored, len(data), CIPHER) == data
        if size >= 3000:
            assert CIPHER.decrypt(stored)[0] == expected


@pytest.mark.parametrize("offset", range(4))
def test_float32_split_finds_the_words_at_any_offset(offset: int) -> None:
    data = _floats((1 << 20) + 8)[offset : offset + (1 << 20)]
    assert codec.choose_mode(data[:65536]) == codec.MODE_SHUFFLE_ZSTD
    stored = codec.encode(data, codec.MODE_SHUFFLE_ZSTD, CIPHER)
    assert len(stored) < 0.86 * len(data)
    zstd_only = codec.encode(data, codec.MODE_ZSTD, CIPHER)
    assert len(stored) < len(zstd_only)
    assert codec.decode(stored, len(data), CIPHER) == data


def test_random_data_is_stored_raw() -> None:
    data = os.urandom(1 << 16)
    assert codec.choose_mode(data) == codec.MODE_RAW
    assert len(codec.encode(data, codec.MODE_ZSTD, CIPHER)) == len(data) + 1 + 41


def test_tampering_is_detected() -> None:
    stored = bytearray(codec.encode(b"hello world" * 100, codec.MODE_ZSTD, CIPHER))
    stored[len(stored) // 2] ^= 1
    with pytest.raises(DecryptError):
        codec.decode(bytes(stored), 1100, CIPHER)
