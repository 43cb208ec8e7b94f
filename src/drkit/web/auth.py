"""Authentication and CSRF for the internal side of the status page.

The key comes from ``DRKIT_STATUS_KEY`` (``DRKIT_STATUS_KEY_FILE``); only its SHA-256 is
kept in memory and compared in constant time, as the gateway's client keys. A browser sends
it as HTTP Basic (any user name, the key as password: the user name is recorded as the
author of updates), a script as ``Authorization: Bearer KEY``. No key configured: the
internal side is closed (every request 401), never open.

CSRF: every form carries a token derived from the key's hash and the author (HMAC), checked
on each POST with the ``Origin`` header when the browser sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "DRKIT_STATUS_KEY"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str


class KeyCheck:
    def __init__(self, key: str | None) -> None:
        self._digest = hashlib.sha256(key.encode()).digest() if key else None

    @classmethod
    def from_env(cls) -> KeyCheck:
        key = os.environ.get(KEY_ENV)
        path = os.environ.get(KEY_ENV + "_FILE")
        if not key and path:
            key = Path(path).read_text().strip()
        return cls(key or None)

    @property
    def configured(self) -> bool:
        return self._digest is not None

    def check(self, authorization: str | None) -> Caller | bool | None:
        """The caller for a good header; ``None`` when absent; ``False`` when wrong."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        user, key = "operator", ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                user, _, key = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
        else:
            return False
        if self._digest is None:
            return False
        if not hmac.compare_digest(hashlib.sha256(key.encode()).digest(), self._digest):
            return False
        return Caller(user[:60] or "operator")

    @property
    def link_key(self) -> bytes | None:
        """The key of signed links in mails (unsubscribe), derived from the key's hash."""
        if self._digest is None:
            return None
        return hmac.new(self._digest, b"links", "sha256").digest()

    def csrf(self, caller: Caller) -> str:
        assert self._digest is not None
        return hmac.new(self._digest, b"csrf\0" + caller.name.encode(), "sha256").hexdigest()

    def csrf_ok(self, caller: Caller, token: str) -> bool:
        return self._digest is not None and hmac.compare_digest(self.csrf(caller), token)
