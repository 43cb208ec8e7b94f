"""Encryption of repository objects and password-wrapped master keys.

Every encrypted unit is ``0x01 | nonce(24) | AES-256-GCM(ciphertext) | tag(16)`` where
the AES key is ``BLAKE3(key=enc_key, data=nonce)`` and the GCM nonce is zero: an
extended-nonce construction, so random nonces never collide in practice (see
``docs/repository-format.md`` section 2).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass

import blake3
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
NONCE_LEN = 24
TAG_LEN = 16
OVERHEAD = 1 + NONCE_LEN + TAG_LEN
_ZERO_NONCE = bytes(12)


class DecryptError(Exception):
    """Authentication failed: wrong key or damaged bytes (callers translate it)."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters, stored in each key file."""

    m_kib: int = 65536
    t: int = 3
    p: int = 2

    @classmethod
    def fast(cls) -> KdfParams:
        """Cheap parameters for tests and rehearsals only (not for real passwords)."""
        return cls(m_kib=1024, t=1, p=1)


class Cipher:
    """Encrypts and decrypts units under one 32-byte key (thread safe, no state)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("an encryption key is 32 bytes")
        self._key = key

    def _aead(self, nonce: bytes) -> AESGCM:
        return AESGCM(blake3.blake3(nonce, key=self._key).digest())

    def encrypt(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        nonce = os.urandom(NONCE_LEN)
        return b"\x01" + nonce + self._aead(nonce).encrypt(_ZERO_NONCE, plaintext, None)

    def encrypt_buffer(self, plaintext: bytes | bytearray | memoryview) -> bytearray:
        """Like :meth:`encrypt`, writing the ciphertext in place (one copy less)."""
        nonce = os.urandom(NONCE_LEN)
        out = bytearray(1 + NONCE_LEN + len(plaintext) + TAG_LEN)
        out[0] = VERSION
        out[1 : 1 + NONCE_LEN] = nonce
        self._aead(nonce).encrypt_into(
            _ZERO_NONCE, plaintext, None, memoryview(out)[1 + NONCE_LEN :]
        )
        return out

    def decrypt(self, data: bytes | memoryview) -> bytes:
        if len(data) < OVERHEAD or data[0] != VERSION:
            raise DecryptError("not an encrypted drkit object (bad header or too short)")
        nonce = bytes(data[1 : 1 + NONCE_LEN])
        try:
            return self._aead(nonce).decrypt(_ZERO_NONCE, data[1 + NONCE_LEN :], None)
        except InvalidTag as exc:
            raise DecryptError("authentication failed") from exc


@dataclass(frozen=True, slots=True)
class MasterKey:
    enc_key: bytes
    mac_key: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(32), secrets.token_bytes(32))

    def to_bytes(self) -> bytes:
        return self.enc_key + self.mac_key

    @classmethod
    def from_bytes(cls, data: bytes) -> MasterKey:
        if len(data) != 64:
            raise DecryptError("a master key is 64 bytes")
        return cls(data[:32], data[32:])

    def __repr__(self) -> str:
        return "MasterKey(**********)"


def _derive(password: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(
        password.encode(),
        salt,
        time_cost=params.t,
        memory_cost=params.m_kib,
        parallelism=params.p,
        hash_len=32,
        type=Type.ID,
    )


def wrap_master_key(
    master: MasterKey, password: str, params: KdfParams, *, host: str, user: str, created: str
) -> bytes:
    """Return a key file (plaintext JSON) holding ``master`` wrapped under ``password``."""
    salt = secrets.token_bytes(16)
    wrapped = Cipher(_derive(password, salt, params)).encrypt(master.to_bytes())
    doc = {
        "version": 1,
        "kdf": "argon2id",
        "m_kib": params.m_kib,
        "t": params.t,
        "p": params.p,
        "salt": base64.b64encode(salt).decode(),
        "wrapped": base64.b64encode(wrapped).decode(),
        "created": created,
        "host": host,
        "user": user,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def parse_key_file(data: bytes) -> dict[str, object]:
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("kdf") != "argon2id":
        raise DecryptError("not a drkit key file")
    return doc


def unwrap_master_key(data: bytes, password: str) -> MasterKey:
    """Open a key file with ``password``; raises :class:`DecryptError` when it does not fit."""
    doc = parse_key_file(data)
    try:
        params = KdfParams(int(doc["m_kib"]), int(doc["t"]), int(doc["p"]))  # type: ignore[call-overload]
        salt = base64.b64decode(str(doc["salt"]))
        wrapped = base64.b64decode(str(doc["wrapped"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise DecryptError("malformed key file") from exc
    return MasterKey.from_bytes(Cipher(_derive(password, salt, params)).decrypt(wrapped))
